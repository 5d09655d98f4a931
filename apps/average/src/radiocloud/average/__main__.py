from radiocloud.average.cli import main

main()
