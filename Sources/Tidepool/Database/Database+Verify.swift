import Foundation
import Logging

extension Database {
    /// Opens the database at `path` read-only (changing nothing: no log file started or cut,
    /// nothing deleted), recomputes every checksum and checks invariants. Returns the problems
    /// found; empty means sound.
    public static func verify(path: String, logger: Logger = Logger(label: "tidepool")) -> [String] {
        guard StorageLocation.directory(path).hasDatabase else {
            return ["no database at '\(path)' (missing MANIFEST)"]
        }
        do {
            return verify(storage: try StorageLocation.directory(path).open(create: false), path: path, logger: logger)
        } catch {
            return ["\(error)"]
        }
    }

    /// `verify` of the database `storage` holds.
    static func verify(storage: any StorageBackend, path: String, logger: Logger = Logger(label: "tidepool")) -> [String] {
        do {
            let db = try Database(
                storage: storage, path: path, options: DatabaseOptions(verifyChecksumsOnOpen: true, readOnly: true, logger: logger))
            defer { try? db.close() }
            var problems = (storage as? ObjectStorage)?.manifestHistoryProblems() ?? []
            for name in db.collectionNames {
                do {
                    let c = try db.collection(name)
                    problems += try c.checkInvariants()
                    problems += c.versionProblems()
                } catch {
                    problems.append("collection '\(name)': \(error)")
                }
            }
            return problems
        } catch {
            return ["\(error)"]
        }
    }
}
