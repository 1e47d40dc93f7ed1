// swift-tools-version:6.0
import PackageDescription

// sagedev depends on nothing but the Swift toolchain (Foundation, Dispatch, Glibc, Swift Testing).
let package = Package(
    name: "sagedev",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sagedev", targets: ["sagedev"]),
    ],
    targets: [
        // Glibc pieces Swift cannot see without _GNU_SOURCE (pidfd_open, POSIX_SPAWN_SETSID, closefrom, ucred).
        .target(name: "CSageSystem"),
        // Bytes, crypto, protocol state machines and decoders. No I/O.
        .target(name: "SageWire"),
        // The only module that talks to the OS.
        .target(name: "SageSystem", dependencies: ["CSageSystem"]),
        // status.schema.json documents `status --json`; a test reads it from the source tree.
        .target(name: "SageCore", dependencies: ["SageWire", "SageSystem"], exclude: ["Daemon/status.schema.json"]),
        .target(name: "SageCLI", dependencies: ["SageCore", "SageSystem", "SageWire"]),
        .executableTarget(name: "sagedev", dependencies: ["SageCLI", "SageSystem"]),
        // Seeded generators, mutators and drivers that fuzz the decoders: the bench runs them long, the tests short.
        .target(name: "SageFuzz", dependencies: ["SageWire"], path: "bench/Sources/SageFuzz"),
        .executableTarget(name: "sagedev-bench", dependencies: ["SageCore", "SageFuzz", "SageSystem"], path: "bench/Sources/sagedev-bench"),

        .testTarget(name: "SageWireTests", dependencies: ["SageWire", "SageFuzz"]),
        .testTarget(name: "SageSystemTests", dependencies: ["SageSystem"]),
        .testTarget(name: "SageCoreTests", dependencies: ["SageCore", "SageSystem", "SageWire"]),
        .testTarget(name: "SageCLITests", dependencies: ["SageCLI", "SageCore", "SageSystem", "SageWire"]),
        .testTarget(name: "IntegrationTests", dependencies: ["SageCLI", "SageCore", "SageFuzz", "SageSystem", "SageWire"]),
    ],
    swiftLanguageModes: [.v6]
)
