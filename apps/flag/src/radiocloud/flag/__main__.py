from radiocloud.flag.cli import main

main()
