from radiocloud.calibrate.cli import main

main()
