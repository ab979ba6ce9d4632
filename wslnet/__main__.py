from wslnet.cli import main

main()
