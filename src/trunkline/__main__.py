from trunkline.cli import main

main()
