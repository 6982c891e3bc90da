import Testing

@testable import EdgeAgent

/// A libmosquitto failure names what was attempted, libmosquitto's code and the system error.
@Suite struct MQTTErrorTests {
    @Test func aSystemCallFailureNamesItsErrno() {
        let error = MQTTError(operation: "connect", code: 14, systemErrno: 111)  // MOSQ_ERR_ERRNO, ECONNREFUSED
        #expect(error.code == 14 && error.systemErrno == 111)
        #expect("\(error)".hasPrefix("cannot connect: "))
        #expect("\(error)".contains("libmosquitto 14"))
        #expect("\(error)".contains("errno 111: Connection refused"))
    }

    @Test func aSettingRefusedBeforeLibmosquittoHasNoCode() {
        let error = MQTTError(operation: "read the URL ::", code: nil, systemErrno: 0)
        #expect(error.systemErrno == nil)
        #expect("\(error)" == "cannot read the URL ::")
    }
}
