package main

// commands lists every subcommand. Each is defined in its own file.
func commands() []command {
	return []command{
		// Entries are added here as commands arrive, e.g. schemaCommand().
		schemaCommand(),
		checkCommand(),
		runCommand(),
		captureCommand(),
		applyCommand(),
		statusCommand(),
		snapshotCommand(),
		resyncCommand(),
		migrateCommand(),
		checkpointsCommand(),
		dlqCommand(),
		verifyCommand(),
		cutoverCommand(),
		bufferCommand(),
		versionCommand(),
	}
}
