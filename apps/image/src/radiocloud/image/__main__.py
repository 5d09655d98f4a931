from radiocloud.image.cli import main

main()
