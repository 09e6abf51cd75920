/// This build's release number: what `tidepool --version` prints, `/health` reports and
/// benchmark reports carry. The one place it is set.
public let tidepoolReleaseVersion = "0.2.0"
