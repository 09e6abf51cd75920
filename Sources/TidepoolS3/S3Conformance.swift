import Foundation

/// Checks that a store gives what Tidepool relies on, against real objects under a scratch
/// prefix that it removes afterwards: `tidepool s3-check` prints the report.
public enum S3Conformance {
    /// One property and whether the store has it.
    public struct Check: Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
        /// Whether a writer needs it (without it the node may still serve reads).
        public var neededToWrite: Bool
    }

    public struct Report: Sendable {
        public var location: String
        public var checks: [Check]
        /// Everything a writer needs is there (and everything a reader needs).
        public var canWrite: Bool { canRead && checks.allSatisfy { $0.passed || !$0.neededToWrite } }
        /// Everything a reader needs is there.
        public var canRead: Bool { checks.allSatisfy { $0.passed || $0.neededToWrite } }
        /// What a writer needs and the store lacks, in words.
        public var missingForWriting: [String] { checks.filter { !$0.passed && $0.neededToWrite }.map(\.name) }
    }

    /// Runs every check under `prefix` (a scratch folder below it is used and removed).
    public static func run(_ client: S3Client, prefix: String) -> Report {
        let scratch = (prefix.isEmpty ? "" : prefix + "/") + ".tidepool-s3-check-\(UInt64.random(in: 1...UInt64.max))/"
        var checks: [Check] = []
        func check(_ name: String, write: Bool, _ body: () throws -> String) {
            do { checks.append(Check(name: name, passed: true, detail: try body(), neededToWrite: write)) } catch let e as S3Error {
                checks.append(Check(name: name, passed: false, detail: e.description, neededToWrite: write))
            } catch {
                checks.append(Check(name: name, passed: false, detail: "\(error)", neededToWrite: write))
            }
        }
        struct Missing: Error, CustomStringConvertible { var description: String }

        check("reach the bucket, credentials accepted", write: false) {
            _ = try client.list(prefix: scratch, limit: 1)
            return "ListObjectsV2 answered"
        }
        guard checks[0].passed else { return Report(location: client.url(prefix), checks: checks) }
        defer {
            if let keys = try? client.list(prefix: scratch) { for k in keys { try? client.delete(k.key) } }
        }

        let payload = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        check("read after write", write: false) {
            try client.put(scratch + "plain", payload)
            guard let got = try client.get(scratch + "plain"), got.bytes == payload else {
                throw Missing(description: "an object written was not read back whole")
            }
            return "an object written is read back at once"
        }
        check("range GET", write: false) {
            guard let got = try client.get(scratch + "plain", range: 1000..<1100), got.bytes == Array(payload[1000..<1100]) else {
                throw Missing(description: "bytes 1000-1099 did not come back as asked")
            }
            guard got.totalSize == payload.count else { throw Missing(description: "no total size in Content-Range") }
            return "bytes 1000-1099 of 4096, with the total size"
        }
        check("conditional create (If-None-Match: *)", write: true) {
            guard case .written = try client.create(scratch + "slot", [1, 2, 3]) else {
                throw Missing(description: "the first create was refused")
            }
            guard case .conditionFailed = try client.create(scratch + "slot", [4, 5, 6]) else {
                throw Missing(
                    description:
                        "a second create of the same key succeeded: the store ignores If-None-Match, so two writers could both commit")
            }
            guard try client.get(scratch + "slot")?.bytes == [1, 2, 3] else {
                throw Missing(description: "the second create replaced the first")
            }
            return "a second create of the same key is refused (412)"
        }
        check("compare-and-swap (If-Match)", write: true) {
            guard let first = try client.head(scratch + "slot")?.eTag else { throw Missing(description: "no ETag on the object") }
            guard case .written = try client.replace(scratch + "slot", [7], ifMatch: first) else {
                throw Missing(description: "a swap with the current ETag was refused")
            }
            guard case .conditionFailed = try client.replace(scratch + "slot", [8], ifMatch: first) else {
                throw Missing(description: "a swap with a stale ETag succeeded: the store ignores If-Match")
            }
            return "a swap with a stale ETag is refused (412)"
        }
        check("user metadata kept (x-amz-meta-*)", write: true) {
            let token = String(UInt64.random(in: 1...UInt64.max), radix: 16)
            guard case .written = try client.create(scratch + "meta", [0], metadata: ["commit-token": token]) else {
                throw Missing(description: "the create was refused")
            }
            guard try client.head(scratch + "meta")?.metadata["commit-token"] == token else {
                throw Missing(description: "the commit token written with the object did not come back")
            }
            return "a commit token written with an object comes back"
        }
        check("list in key order, with continuation", write: false) {
            let names = ["b", "a", "c/d", "c/e", "aa"]
            for n in names { try client.put(scratch + "list/" + n, [0]) }
            let all = try client.list(prefix: scratch + "list/").map { String($0.key.dropFirst((scratch + "list/").count)) }
            guard all == names.sorted() else { throw Missing(description: "listed \(all), expected \(names.sorted())") }
            let paged = try client.list(prefix: scratch + "list/", pageSize: 2).count
            guard paged == names.count else { throw Missing(description: "pages of 2 listed \(paged) keys, expected \(names.count)") }
            let after = try client.list(prefix: scratch + "list/", startAfter: scratch + "list/b").count
            guard after == 2 else { throw Missing(description: "start-after listed \(after) keys, expected 2") }
            return "keys come in byte order; continuation tokens and start-after work"
        }
        check("list folders (delimiter)", write: false) {
            // What opening a writer lists to tell dropped collections' folders from live ones.
            for k in ["dirs/a/1", "dirs/a/2", "dirs/b/x/1", "dirs/c"] { try client.put(scratch + k, [0]) }
            let names = try client.list(prefix: scratch + "dirs/", delimiter: "/").map {
                String($0.key.dropFirst((scratch + "dirs/").count))
            }
            guard names.sorted() == ["a/", "b/", "c"] else { throw Missing(description: "listed \(names.sorted()), expected [a/, b/, c]") }
            return "keys under a folder roll up into one entry per subfolder"
        }
        check("delete", write: true) {
            try client.delete(scratch + "plain")
            guard try client.get(scratch + "plain") == nil else { throw Missing(description: "a deleted object is still read") }
            try client.delete(scratch + "never-existed")
            return "a deleted object is gone; deleting a missing one is no error"
        }
        return Report(location: client.url(prefix), checks: checks)
    }
}
