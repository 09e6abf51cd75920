import ArgumentParser
import Foundation
import TidepoolS3

/// `tidepool s3-check s3://bucket/prefix`: whether an object store gives what Tidepool relies on.
struct S3CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3-check",
        abstract: "Check that an S3-compatible store gives what Tidepool relies on.",
        discussion: """
            Writes, reads and deletes a few small objects under a scratch folder below the prefix: \
            read after write, range GET, conditional create (If-None-Match: *), compare-and-swap \
            (If-Match), user metadata, listing order and continuation, delete. Endpoint, region and \
            credentials come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, \
            AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), as the AWS SDKs read them; the flags \
            override them. Exits 0 when a writer can run on the store, 2 when only reads can, 1 otherwise.
            """)

    @Argument(help: "The location, s3://bucket/prefix.") var url: String
    @OptionGroup var store: ObjectStoreOptions

    func run() throws {
        let location: S3Location
        let client: S3Client
        do {
            location = try S3Location(parsing: url)
            client = try S3Client(endpoint: try store.endpoint(), bucket: location.bucket)
        } catch let e as S3Error {
            note("error: \(e)")
            throw ExitCode(1)
        }
        let report = S3Conformance.run(client, prefix: location.prefix)
        emit("object store \(report.location)")
        for c in report.checks {
            emit("  \(c.passed ? "ok  " : "FAIL") \(c.name): \(c.detail)")
        }
        if report.canWrite {
            emit("everything Tidepool needs is there: a writer and query nodes can run on this store")
        } else if report.canRead {
            emit("missing for a writer: \(report.missingForWriting.joined(separator: ", ")); query nodes can still read")
            throw ExitCode(2)
        } else {
            emit("this store cannot be used")
            throw ExitCode(1)
        }
    }
}

/// The flags every command that reaches object storage takes.
struct ObjectStoreOptions: ParsableArguments {
    @Option(help: "The S3 endpoint URL (default: AWS_ENDPOINT_URL, else AWS in the region).") var endpoint: String?
    @Option(help: "The region (default: AWS_REGION, else us-east-1).") var region: String?
    @Flag(
        inversion: .prefixedNo,
        help: "Path-style addressing (host/bucket/key); the default when an endpoint is given.")
    var pathStyle: Bool?

    func endpoint(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Endpoint {
        try S3Endpoint.fromEnvironment(env, endpoint: endpoint, region: region, pathStyle: pathStyle)
    }
}
