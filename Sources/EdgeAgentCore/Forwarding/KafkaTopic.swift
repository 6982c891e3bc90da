/// Kafka topic names from the sink's template (SPEC 5.4).
public enum KafkaTopic {
    /// The template with `{site} {line} {agent} {type} {subject}` filled in from `values`.
    public static func fill(_ template: String, _ values: [String: String]) -> String {
        var topic = template
        for (key, value) in values { topic = topic.replacing(key, with: value) }
        return name(topic)
    }

    /// `text` with every character Kafka does not allow in a topic name (outside `[A-Za-z0-9._-]`) as `_`.
    public static func name(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { scalar in
                    switch scalar {
                    case "A"..."Z", "a"..."z", "0"..."9", ".", "_", "-": scalar
                    default: "_"
                    }
                }))
    }
}
