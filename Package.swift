// swift-tools-version: 6.0
// Tidepool: an embeddable vector database and server.
// No unsafeFlags anywhere: this package must be usable as a dependency.
import PackageDescription

let package = Package(
    name: "Tidepool",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Tidepool", targets: ["Tidepool"]),
        .library(name: "TidepoolServer", targets: ["TidepoolServer"]),
        .executable(name: "tidepool", targets: ["TidepoolCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/CoreOffice/XMLCoder", from: "0.17.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // SIMD distance kernels and CRC32C in C: per-function CPU targets
        // (`__attribute__((target))`) with runtime dispatch, which Swift cannot express.
        .target(name: "TidepoolKernels"),
        .target(
            name: "Tidepool",
            dependencies: [
                "TidepoolKernels",
                "TidepoolS3",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                // The metrics API only; it records nothing unless a process bootstraps a backend.
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // An S3 client (SigV4 signing, conditional writes, retries) for object storage.
        .target(
            name: "TidepoolS3",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "XMLCoder", package: "XMLCoder"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The `tidepool` command. Its module is not named `tidepool`: that would collide with
        // `Tidepool` on case-insensitive file systems.
        // The HTTP/JSON API over the engine.
        .target(
            name: "TidepoolServer",
            dependencies: [
                "Tidepool",
                "TidepoolS3",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // gzip request and response bodies.
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .executableTarget(
            name: "TidepoolCLI",
            dependencies: [
                "Tidepool",
                "TidepoolServer",
                "TidepoolS3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                // `tidepool import` of CSV files.
                .product(name: "CSV", package: "CSV.swift"),
            ]
        ),
        .testTarget(name: "TidepoolKernelsTests", dependencies: ["TidepoolKernels"]),
        // Fixtures/: a database written by earlier code, read by FormatFixtureTests (not sources).
        .testTarget(name: "TidepoolTests", dependencies: ["Tidepool"], exclude: ["Fixtures"]),
        // Fixtures/: requests signed by botocore (scripts/sigv4_fixtures.py).
        .testTarget(name: "TidepoolS3Tests", dependencies: ["TidepoolS3"], exclude: ["Fixtures"]),
        .testTarget(
            name: "TidepoolServerTests",
            dependencies: [
                "TidepoolServer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
    ]
)
