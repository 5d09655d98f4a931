from radiocloud.predict.cli import main

main()
