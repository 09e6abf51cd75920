import ArgumentParser
import Foundation
import Tidepool

/// `tidepool bench kmeans`: times k-means training (the IVF coarse quantizer's) on a vector file,
/// to hold against FAISS's `faiss.Kmeans` with the same k and iterations (`scripts/faiss_kmeans.py`).
struct BenchKMeansCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmeans",
        abstract: "Time k-means training (k-means++ seeding, Lloyd iterations) and report its mean squared error.")

    @Option(help: "Vectors (.fvecs or .npy).") var base: String
    @Option(help: "Centroids.") var k: Int = 4096
    @Option(help: "Lloyd iterations.") var iterations: Int = 10
    @Option(help: "Threads.") var threads: Int = 2
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Write a JSON report here.") var json: String?

    func run() throws {
        try runReportingErrors {
            let m = try VectorFile.readVectors(base)
            let start = Date()
            let r = try m.values.withUnsafeBufferPointer {
                try kMeansCentroids($0, dimension: m.dimension, k: k, iterations: iterations, seed: seed, threads: threads)
            }
            let seconds = Date().timeIntervalSince(start)
            let report: [String: Any] = [
                "name": "tidepool-kmeans", "n": m.rows, "dim": m.dimension, "k": k,
                "iterations": iterations, "threads": threads, "train_s": seconds,
                "mse": r.meanSquaredError,
            ]
            print(
                String(
                    format: "tidepool k-means: n=%d dim=%d k=%d iterations=%d threads=%d  %.2f s  mse %.5f",
                    m.rows, m.dimension, k, iterations, threads, seconds, r.meanSquaredError))
            if let json {
                try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
                    .write(to: URL(fileURLWithPath: json))
            }
        }
    }
}
