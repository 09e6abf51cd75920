import Foundation

/// A cgroup v1 memory group that limits what a child process may use, page cache included, and
/// reports the peak it reached: how `tidepool bench --memory-limit` measures memory the way the
/// operating system counts it (anonymous memory plus every file page the process brought in),
/// not as a sum of section sizes.
///
/// Needs the v1 `memory` controller mounted at `/sys/fs/cgroup/memory` and the right to create
/// groups there (root); `create` says why when it cannot.
struct MemoryCgroup {
    static let root = "/sys/fs/cgroup/memory"
    let path: String
    let limitBytes: Int

    /// Creates `tidepool-bench-<pid>-<tag>` with `limitBytes` as its hard limit (swap is not
    /// counted; these machines have none) and `memory.swappiness` 0 so the kernel reclaims page
    /// cache rather than swapping anonymous memory.
    static func create(limitBytes: Int, tag: String) throws -> MemoryCgroup {
        guard FileManager.default.fileExists(atPath: root + "/memory.limit_in_bytes") else {
            throw CgroupError("no cgroup v1 memory controller at \(root)")
        }
        let path = "\(root)/tidepool-bench-\(getpid())-\(tag)"
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw CgroupError("cannot create \(path): \(String(cString: strerror(errno))) (root is needed)")
        }
        let group = MemoryCgroup(path: path, limitBytes: limitBytes)
        try group.write("memory.limit_in_bytes", String(limitBytes))
        try? group.write("memory.swappiness", "0")
        return group
    }

    /// The most memory the group has held (`memory.max_usage_in_bytes`), page cache included.
    var peakBytes: Int? { read("memory.max_usage_in_bytes").flatMap { Int($0) } }
    /// Times the group hit its limit (`memory.failcnt`), each one a reclaim the kernel had to make.
    var limitHits: Int? { read("memory.failcnt").flatMap { Int($0) } }

    /// Runs this executable (its private copy, `childExecutable`) with `arguments`, inside
    /// `group` when there is one (the shell joins the group, then becomes the child, so
    /// everything the child maps is charged there); the child writes its standard error straight
    /// to ours. Returns its standard output; throws when it fails.
    static func runChild(_ arguments: [String], in group: MemoryCgroup?) throws -> Data {
        let (exe, libraries) = try childExecutable()
        let p = Process()
        if let group {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "echo $$ > '\(group.path)/cgroup.procs' && exec \"$0\" \"$@\"", exe] + arguments
        } else {
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["LD_LIBRARY_PATH"] = libraries + (environment["LD_LIBRARY_PATH"].map { ":" + $0 } ?? "")
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationReason == .exit && p.terminationStatus == 0 else {
            let how =
                p.terminationReason == .uncaughtSignal ? "was killed by signal \(p.terminationStatus)" : "exited \(p.terminationStatus)"
            let limit = group.map { " in \($0.path) (limit \($0.limitBytes >> 20) MB)" } ?? ""
            throw CgroupError("the search process\(limit) \(how)")
        }
        return data
    }

    /// A private copy of this executable and of the Swift libraries it maps, for the children:
    /// the running parent keeps its own binary's and libraries' pages mapped, which the page
    /// cache then cannot drop, so a child run from the same files would use that code without
    /// being charged for it. The copies make the child pay for all its code, as a server would.
    /// Returns the executable's path and the folder to put first on `LD_LIBRARY_PATH`.
    static func childExecutable() throws -> (exe: String, libraries: String) {
        let dir = NSTemporaryDirectory() + "/tidepool-bench-child-\(getpid())"
        let exeCopy = dir + "/tidepool"
        if !FileManager.default.fileExists(atPath: exeCopy) {
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "/tidepool-bench-child-\(getpid())") }
            try FileManager.default.copyItem(atPath: exe, toPath: exeCopy)
            let maps = FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() ?? Data()
            var copied = Set<String>()
            for line in String(decoding: maps, as: UTF8.self).split(separator: "\n") {
                guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init),
                    path.hasPrefix("/"), path.contains("/swift/"), path.contains(".so"), copied.insert(path).inserted
                else { continue }
                try? FileManager.default.copyItem(atPath: path, toPath: dir + "/" + (path as NSString).lastPathComponent)
            }
        }
        return (exeCopy, dir)
    }

    /// Removes the group (its remaining page-cache charges move to the parent).
    func remove() { rmdir(path) }

    private func write(_ file: String, _ value: String) throws {
        do {
            try value.write(toFile: path + "/" + file, atomically: false, encoding: .utf8)
        } catch {
            throw CgroupError("cannot write \(value) to \(path)/\(file): \(error.localizedDescription)")
        }
    }

    private func read(_ file: String) -> String? {
        (try? String(contentsOfFile: path + "/" + file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes back dirty pages and drops the page cache, so a measurement starts from disk
    /// (`/proc/sys/vm/drop_caches`, root only); returns why not when it cannot.
    static func dropPageCache() -> String? {
        sync()
        do {
            try "3".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)
            return nil
        } catch {
            return "cannot drop the page cache (\(error.localizedDescription)); the run starts with whatever is cached"
        }
    }
}

struct CgroupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
