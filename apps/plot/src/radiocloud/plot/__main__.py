from radiocloud.plot.cli import main

main()
