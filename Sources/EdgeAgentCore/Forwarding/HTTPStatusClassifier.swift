import Foundation  // DateFormatter: the HTTP-date form of Retry-After (RFC 9110)

/// SPEC 5.1 as one pure function: an HTTP response to the forwarder's next step.
public enum HTTPStatusClassifier {
    public static func outcome(status: Int, retryAfter: String?, body: String, now: Date) -> DeliveryOutcome {
        switch status {
        case 200..<300: return .delivered
        case 429: return .retry(.http_429, retryAfter: retryAfter.flatMap { parseRetryAfter($0, now: now) })
        case 408: return .retry(.timeout, retryAfter: retryAfter.flatMap { parseRetryAfter($0, now: now) })
        case 500...: return .retry(.http_5xx, retryAfter: retryAfter.flatMap { parseRetryAfter($0, now: now) })
        case 413: return .tooLarge
        case 401, 403, 404: return .misconfigured(status: status, body: body)
        case 400..<500: return .rejected(status: status, body: body)
        default: return .misconfigured(status: status, body: body)  // a redirect: the URL is not the endpoint
        }
    }

    /// `Retry-After` as delta-seconds or an HTTP date; capped at an hour so a broken header cannot park a sink.
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int64(min(seconds, 3600) * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return .milliseconds(Int64(min(max(0, date.timeIntervalSince(now)), 3600) * 1000))
            }
        }
        return nil
    }
}
