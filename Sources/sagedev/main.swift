import SageCLI
import Glibc

// The executable stays thin: all behaviour lives in SageCLI, which returns the exit code.
exit(SageCLI.main(arguments: CommandLine.arguments))
