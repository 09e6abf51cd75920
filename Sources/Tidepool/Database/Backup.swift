import Foundation
import Logging

/// What a backup or a restore did.
public struct BackupReport: Sendable, Equatable {
    /// The collection's version the backup holds.
    public var version: UInt64
    public var files: Int
    public var bytes: Int
    public var seconds: Double
    /// Bytes the object store copied itself (between two prefixes of one bucket): read once for
    /// their checksums, never sent back.
    public var bytesCopiedInStore: Int = 0
    /// The collection backed up, or the one a restore created.
    public var collection: String = ""
    public var bytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds : 0 }
}

/// Backups of one collection to a directory or an object-storage prefix, and restores from them.
///
/// A backup reads the source without a lock, so a server can go on serving and writing while it
/// runs: it copies the committed version's files (kept by version retention while it copies)
/// and the log after it, and starts again from the newer state if a flush removed a log file
/// under it. Every 4 MiB of every file gets a CRC32C in the backup's manifest, written last.
/// Between two prefixes of one S3 bucket the store copies each file (CopyObject) after it is
/// read for its checksums, so its bytes are sent once, not twice.
public enum Backup {
    /// Backs up collection `collection` of the database at `source` (a directory or `s3://` URL)
    /// to `destination`, which must not hold a backup yet. `progress` is called with bytes done
    /// and bytes in all.
    @discardableResult
    public static func create(
        source: String, collection: String, destination: String, objectStorage: ObjectStorageOptions = ObjectStorageOptions(),
        logger: Logger = Logger(label: "tidepool"), progress: ((Int, Int) -> Void)? = nil
    ) throws -> BackupReport {
        let start = ContinuousClock.now
        let from = try open(source, objectStorage: objectStorage, logger: logger, create: false)
        let to = try open(destination, objectStorage: objectStorage.forBackup, logger: logger, create: true)
        if (try? to.size(of: BackupManifest.name)) != nil {
            throw TidepoolError.alreadyExists("\(to.displayPath(BackupManifest.name)): a backup is there already")
        }
        for attempt in 1...5 {
            guard let raw = try from.readManifest() else {
                throw TidepoolError.invalidArgument("no database at '\(source)' (no manifest there)")
            }
            let manifest = try Manifest.decode(raw, file: from.manifestDisplayPath)
            guard let entry = manifest.collections.first(where: { $0.name == collection }) else {
                throw TidepoolError.collectionNotFound(collection)
            }
            let folder = "collections/" + collection
            // The log files holding operations after the state, as replay picks them (older ones
            // are kept for restores to a point in the source; the backup does not need them).
            let all = try from.list(folder + "/wal").filter { WALFormat.firstSeq(fromFileName: $0) != nil }
            let logs = all.indices.filter { i in
                i + 1 == all.count || (WALFormat.firstSeq(fromFileName: all[i + 1]) ?? 0) > entry.flushedSeq + 1
            }.map { all[$0] }
            // The log must reach back to the state's flushed sequence number: a flush and its
            // log deletion between reading the manifest and listing the log mean a newer state.
            if let first = logs.compactMap(WALFormat.firstSeq(fromFileName:)).min(), first > entry.flushedSeq + 1 {
                guard attempt < 5 else {
                    throw TidepoolError.storage("backup of '\(collection)': the source kept changing under the copy; try again")
                }
                continue
            }
            let names = entry.files.map { "segments/" + $0 } + logs.map { "wal/" + $0 }
            let sizes = try names.map { try from.size(of: folder + "/" + $0) }
            let total = sizes.reduce(0, +)
            var done = 0
            var files: [BackupManifest.File] = []
            var inStore = 0
            do {
                for (name, size) in zip(names, sizes) {
                    let copied = try copy(from, folder + "/" + name, to, BackupManifest.folder + "/" + name, bytes: size) { n in
                        done += n
                        progress?(done, total)
                    }
                    if copied.inStore { inStore += size }
                    files.append(BackupManifest.File(name: name, bytes: size, checksums: copied.checksums))
                }
            } catch let e as TidepoolError where isMissing(e) && attempt < 5 {
                // A flush or compaction moved on under the copy: start again from the newer state.
                logger.info("backup of '\(collection)': \(e); starting again from the newer manifest")
                try to.deleteFolder(BackupManifest.folder)
                continue
            }
            let record = BackupManifest(
                created: Date().timeIntervalSince1970, source: source, collection: collection, version: entry.version ?? 0,
                entry: entry.asVersionState, chunk: BackupManifest.chunkBytes, files: files)
            try to.writeWhole(BackupManifest.name, try record.encoded())
            return BackupReport(
                version: record.version, files: files.count, bytes: total, seconds: (ContinuousClock.now - start).inSeconds,
                bytesCopiedInStore: inStore, collection: collection)
        }
        throw TidepoolError.storage("backup of '\(collection)': the source kept changing under the copy; try again")
    }

    /// The backup at `location`, checked (its manifest; the files are checked as they are read).
    static func manifest(at location: String, objectStorage: ObjectStorageOptions, logger: Logger) throws -> (
        BackupManifest, any StorageBackend
    ) {
        let from = try open(location, objectStorage: objectStorage.forBackup, logger: logger, create: false)
        guard let size = try? from.size(of: BackupManifest.name) else {
            throw TidepoolError.notFound(
                "\(from.displayPath(BackupManifest.name)) does not exist: no backup there, or one that was cut off before it finished")
        }
        guard size <= BackupManifest.maxSize else {
            throw TidepoolError.corrupt(
                file: from.displayPath(BackupManifest.name), offset: 0,
                reason: "a backup manifest of \(size) bytes is larger than any backup needs")
        }
        let m = try BackupManifest.decode(
            try from.read(BackupManifest.name, offset: 0, count: size), file: from.displayPath(BackupManifest.name))
        return (m, from)
    }

    static func open(_ location: String, objectStorage: ObjectStorageOptions, logger: Logger, create: Bool) throws -> any StorageBackend {
        location.hasPrefix("s3://")
            ? try ObjectStorage.open(url: location, options: objectStorage, logger: logger)
            : try LocalStorage(root: location, create: create)
    }

    /// The state a backup restores, checked as if a user had asked for it: only the state (no
    /// retired files, snapshots or restore points of the source), a dimension and settings a
    /// collection may have, segment files named as the engine names them and all in the backup.
    static func checkedEntry(_ backup: BackupManifest, file: String) throws -> Manifest.CollectionEntry {
        let entry = backup.entry.asVersionState
        func bad(_ reason: String) -> TidepoolError { .corrupt(file: file, offset: ChecksummedJSON.headerSize, reason: reason) }
        guard (1...65_536).contains(entry.dimension) else { throw bad("dimension \(entry.dimension) is not 1...65536") }
        do { try entry.config.validate(dimension: entry.dimension) } catch { throw bad("settings: \(error)") }
        let listed = Set(backup.files.map(\.name))
        for s in entry.segments {
            guard s.file == SegmentFormat.fileName(id: s.id), listed.contains("segments/" + s.file), s.rows >= 0, s.bytes >= 0 else {
                throw bad("segment '\(s.file)' is not one the backup holds")
            }
            if let d = s.deletedFile, !listed.contains("segments/" + d) { throw bad("deleted-rows file '\(d)' is not in the backup") }
        }
        return entry
    }

    static func isMissing(_ e: TidepoolError) -> Bool {
        if case .io(_, _, let code) = e, code == ENOENT { return true }
        return false
    }

    /// Copies `bytes` bytes of a file in pieces of `BackupManifest.chunkBytes`, returning each
    /// piece's CRC32C; with `expected`, checks each piece against it instead and names the first
    /// damaged one's offset.
    static func copy(
        _ from: any StorageBackend, _ source: String, _ to: any StorageBackend, _ target: String, bytes: Int,
        expected: [UInt32]? = nil, progress: (Int) -> Void
    ) throws -> (checksums: [UInt32], inStore: Bool) {
        // Within one bucket the store copies the file itself; it is still read once, for its checksums.
        let inside = sameBucket(from, to)
        let writer: ImmutableFileWriter? = inside == nil ? try to.createImmutable(target) : nil
        var sums: [UInt32] = []
        do {
            var offset = 0
            while offset < bytes {
                let piece = try from.read(source, offset: offset, count: min(BackupManifest.chunkBytes, bytes - offset))
                guard !piece.isEmpty else {
                    throw TidepoolError.corrupt(
                        file: from.displayPath(source), offset: offset, reason: "file ends at \(offset) bytes, \(bytes) expected")
                }
                let sum = crc32c(piece)
                if let expected, sums.count >= expected.count || expected[sums.count] != sum {
                    throw TidepoolError.corrupt(
                        file: from.displayPath(source), offset: offset,
                        reason: "the \(piece.count) bytes from here do not match the backup's checksum")
                }
                sums.append(sum)
                try writer?.write(piece)
                offset += piece.count
                progress(piece.count)
            }
            if let expected, (try? from.size(of: source)) != bytes || sums.count != expected.count {
                throw TidepoolError.corrupt(
                    file: from.displayPath(source), offset: min(bytes, (try? from.size(of: source)) ?? 0),
                    reason: "the file is not the \(bytes) bytes the backup lists")
            }
            if let (a, b) = inside {
                do { try b.client.copy(from: a.root.key(source), to: b.root.key(target)) } catch {
                    throw TidepoolError.storage("copying \(from.displayPath(source)) to \(to.displayPath(target)) in the store: \(error)")
                }
            }
            try writer?.commit()
        } catch {
            writer?.abort()
            throw error
        }
        return (sums, inside != nil)
    }

    /// The two S3 stores when both locations are in one bucket of one endpoint (a copy can
    /// happen inside the store), else nil.
    private static func sameBucket(_ from: any StorageBackend, _ to: any StorageBackend) -> (S3ObjectStore, S3ObjectStore)? {
        guard let a = (from as? ObjectStorage)?.store as? S3ObjectStore, let b = (to as? ObjectStorage)?.store as? S3ObjectStore,
            a.client.url(nil) == b.client.url(nil)
        else { return nil }
        return (a, b)
    }
}

extension Database {
    /// Recreates a collection from the backup at `location` (a directory or `s3://` URL) under
    /// `name` (default: the name it had), checking every byte against the backup's checksums;
    /// a damaged or missing file fails with its name and offset, and leaves nothing behind.
    /// Writes made after the backed-up version are replayed from the log files it holds; with
    /// `toSequence`, only those up to that sequence number (the source's numbering): the
    /// collection is restored whole, then returned to that point (`restoreCollection(_:toSequence:)`),
    /// and dropped again if that fails.
    @discardableResult
    public func restoreBackup(
        from location: String, as name: String? = nil, toSequence: UInt64? = nil,
        objectStorage: ObjectStorageOptions = ObjectStorageOptions(), progress: ((Int, Int) -> Void)? = nil
    ) throws -> BackupReport {
        let report = try restoreWholeBackup(from: location, as: name, objectStorage: objectStorage, progress: progress)
        guard let sequence = toSequence else { return report }
        do {
            try restoreCollection(report.collection, toSequence: sequence)
        } catch {
            try? dropCollection(report.collection)
            throw error
        }
        return report
    }

    private func restoreWholeBackup(
        from location: String, as name: String?, objectStorage: ObjectStorageOptions, progress: ((Int, Int) -> Void)?
    ) throws -> BackupReport {
        try refuseIfReadOnly("restore a backup")
        let start = ContinuousClock.now
        let (backup, from) = try Backup.manifest(at: location, objectStorage: objectStorage, logger: options.logger)
        let name = name ?? backup.collection
        try Database.validateName(name)
        let entry = try Backup.checkedEntry(backup, file: from.displayPath(BackupManifest.name))
        try reserve(name)
        defer { release(name) }
        let folder = "collections/" + name
        try? storage.deleteFolder(folder)  // left by an interrupted restore: the manifest never named it
        var done = 0
        var inStore = 0
        do {
            for f in backup.files {
                let source = BackupManifest.folder + "/" + f.name
                guard (try? from.size(of: source)) != nil else {
                    throw TidepoolError.corrupt(
                        file: from.displayPath(source), offset: 0, reason: "the backup lists this file, which is missing")
                }
                let copied = try Backup.copy(from, source, storage, folder + "/" + f.name, bytes: f.bytes, expected: f.checksums) { n in
                    done += n
                    progress?(done, backup.bytes)
                }
                if copied.inStore { inStore += f.bytes }
            }
            if backup.files.contains(where: { $0.name.hasPrefix("segments/") }) { try storage.syncFolder(folder + "/segments") }
            if !backup.files.isEmpty { try storage.syncFolder(folder) }
            var entry = entry
            entry.name = name
            entry.version = 1
            entry.versionTime = Date().timeIntervalSince1970
            if storage.logsAreObjects {
                entry.nextSegmentID = max(entry.nextSegmentID, lock.withLock { manifest.generation } << 32)
            }
            try installCollection(entry)
        } catch {
            try? storage.deleteFolder(folder)
            throw error
        }
        options.logger.info("collection '\(name)': restored from \(location) (version \(backup.version) of '\(backup.collection)')")
        return BackupReport(
            version: backup.version, files: backup.files.count, bytes: backup.bytes, seconds: (ContinuousClock.now - start).inSeconds,
            bytesCopiedInStore: inStore, collection: name)
    }
}

extension ObjectStorageOptions {
    /// For a backup's own location: the same store settings, but a cache of its own (a cache
    /// directory holds one location's files; the database's is the one given).
    var forBackup: ObjectStorageOptions {
        var o = self
        o.cacheDirectory = nil
        return o
    }
}
