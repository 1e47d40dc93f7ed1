import SageCLI
import SageSystem

// The executable stays thin: all behaviour lives in SageCLI, which returns the exit code.
ProcessIdentity.exit(SageCLI.main(arguments: CommandLine.arguments))
