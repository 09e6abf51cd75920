// swift-tools-version: 6.0
// Tidepool: an embeddable vector database and server.
// No unsafeFlags anywhere: this package must be usable as a dependency.
import PackageDescription

let package = Package(
    name: "Tidepool",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Tidepool", targets: ["Tidepool"]),
        .executable(name: "tidepool", targets: ["TidepoolCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
    ],
    targets: [
        // SIMD distance kernels and CRC32C in C: per-function CPU targets
        // (`__attribute__((target))`) with runtime dispatch, which Swift cannot express.
        .target(name: "TidepoolKernels"),
        .target(
            name: "Tidepool",
            dependencies: [
                "TidepoolKernels",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // The `tidepool` command. Its module is not named `tidepool`: that would collide with
        // `Tidepool` on case-insensitive file systems.
        .executableTarget(
            name: "TidepoolCLI",
            dependencies: [
                "Tidepool",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TidepoolKernelsTests", dependencies: ["TidepoolKernels"]),
        .testTarget(name: "TidepoolTests", dependencies: ["Tidepool"]),
    ]
)
