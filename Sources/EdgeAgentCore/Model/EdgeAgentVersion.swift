/// The release, from one place: `edge-agent --version`, the MQTT status message.
public enum EdgeAgentVersion {
    public static let current = "0.6.0"
}
