"""What tests build on: the Bot API emulator (:mod:`.botapi`), a generated catalog
(:mod:`.catalog`) and where the repository and the shared data sets are (:mod:`.paths`)."""
