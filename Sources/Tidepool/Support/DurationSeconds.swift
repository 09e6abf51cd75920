extension Duration {
    /// The duration in seconds, as a `Double` (for sleeps, clocks in seconds and metrics).
    package var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
