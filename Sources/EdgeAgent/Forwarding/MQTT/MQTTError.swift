import CMosquitto

#if canImport(Glibc)
    import Glibc
#endif

/// A failed libmosquitto call: what the sink was doing, libmosquitto's result code
/// (`MOSQ_ERR_*`), and the system's `errno` when the code says a system call failed
/// (`MOSQ_ERR_ERRNO`), so a log names the cause rather than only "error". The code is nil for a
/// setting the sink refuses before libmosquitto sees it.
struct MQTTError: Error, CustomStringConvertible, Sendable {
    let operation: String
    let code: Int32?
    let systemErrno: Int32?

    init(operation: String, code: Int32?, systemErrno: Int32? = nil) {
        self.operation = operation
        self.code = code
        self.systemErrno = systemErrno.flatMap { $0 == 0 ? nil : $0 }
    }

    var description: String {
        "cannot \(operation)"
            + (code.map { ": \(String(cString: mosquitto_strerror($0))) (libmosquitto \($0))" } ?? "")
            + (systemErrno.map { " [errno \($0): \(String(cString: strerror($0)))]" } ?? "")
    }
}
