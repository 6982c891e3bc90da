import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// The statement cache: one statement per SQL text, reset at each use, and no read snapshot
/// left open by a query stopped in the middle of its rows.
@Suite struct SQLiteConnectionTests {
    func database(_ dir: TemporaryDirectory) throws -> (writer: SQLiteConnection, reader: SQLiteConnection) {
        let writer = try SQLiteConnection(path: dir.path + "/t.db")
        try writer.execute("PRAGMA journal_mode=WAL")
        try writer.execute("CREATE TABLE t(x INTEGER PRIMARY KEY)")
        try writer.execute("INSERT INTO t(x) VALUES (1), (2), (3)")
        return (writer, try SQLiteConnection(path: dir.path + "/t.db"))
    }

    @Test func aCachedStatementIsPreparedOnceAndStartsFromItsFirstRowAtEachUse() throws {
        let dir = TemporaryDirectory()
        let (_, reader) = try database(dir)
        let first = try reader.cached("SELECT x FROM t ORDER BY x")
        #expect(try first.step() && first.int(0) == 1)
        #expect(try first.step() && first.int(0) == 2)
        let again = try reader.cached("SELECT x FROM t ORDER BY x")
        #expect(again === first)
        #expect(try again.step() && again.int(0) == 1)
        again.reset()
    }

    @Test func aTextEqualToTheOneBeforeIsThatStringAndAnotherIsItsOwn() throws {
        let dir = TemporaryDirectory()
        let (writer, reader) = try database(dir)
        try writer.execute("CREATE TABLE s(i INTEGER PRIMARY KEY, t TEXT)")
        try writer.execute(
            "INSERT INTO s(t) VALUES ('press.cycle'), ('press.cycle'), ('press.cyclf'), ('press'), ('')")
        let select = try reader.prepare("SELECT t FROM s ORDER BY i")
        var texts: [String] = []
        while try select.step() { texts.append(select.text(0, reusing: texts.last ?? "press.cycle")) }
        #expect(texts == ["press.cycle", "press.cycle", "press.cyclf", "press", ""])
    }

    @Test func aScalarOfSeveralRowsLeavesNoSnapshotOpen() throws {
        let dir = TemporaryDirectory()
        let (writer, reader) = try database(dir)
        #expect(try reader.scalar("SELECT x FROM t ORDER BY x") == 1)  // stops after the first of 3 rows
        try writer.execute("INSERT INTO t(x) VALUES (4)")
        // A statement still in its rows would keep the reader on the snapshot it started in.
        #expect(try reader.scalar("SELECT count(*) FROM t") == 4)
        // And the writer can checkpoint the whole WAL: no reader holds any part of it.
        let checkpoint = try writer.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        #expect(try checkpoint.step())
        #expect(checkpoint.int(0) == 0, "busy")
    }

    @Test func aQueryPastItsBudgetIsInterruptedAndTheNextOneRuns() throws {
        let dir = TemporaryDirectory()
        let (_, reader) = try database(dir)
        let clock = ContinuousClock()
        let began = clock.now
        #expect(throws: SQLiteError.self) {
            try reader.within(.milliseconds(50)) {
                try reader.scalar(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n")
            }
        }
        #expect(clock.now - began < .seconds(5))
        #expect(try reader.within(.seconds(5)) { try reader.scalar("SELECT count(*) FROM t") } == 3)
        #expect(
            try reader.scalar(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) SELECT max(i) FROM n"
            ) == 2_000_000, "no budget once it returned")
    }

    @Test func aFailedOpenCarriesItsResultCodeAndTheSystemError() throws {
        let dir = TemporaryDirectory()
        do {
            _ = try SQLiteConnection(path: dir.path + "/missing/t.db")
            Issue.record("a database in a missing folder opened")
        } catch let error as SQLiteError {
            #expect(error.code.primary == .cannotOpen)
            #expect(error.systemErrno == 2, "ENOENT: \(error)")
            #expect(!error.isDamage)
            #expect("\(error)".contains("No such file or directory"))
        }
    }

    @Test func aFileThatIsNoDatabaseIsDamageAndABusyDatabaseIsNot() throws {
        let dir = TemporaryDirectory()
        try String(repeating: "not a database ", count: 512).write(
            toFile: dir.path + "/junk.db", atomically: false, encoding: .utf8)
        let junk = try SQLiteConnection(path: dir.path + "/junk.db")
        #expect {
            try junk.scalar("SELECT count(*) FROM sqlite_master")
        } throws: { error in
            (error as? SQLiteError)?.code == .notADatabase && (error as? SQLiteError)?.isDamage == true
        }
        let (writer, reader) = try database(dir)
        try writer.execute("BEGIN IMMEDIATE")
        try reader.execute("PRAGMA busy_timeout=0")
        #expect {
            try reader.execute("INSERT INTO t(x) VALUES (9)")
        } throws: { error in
            (error as? SQLiteError)?.code.primary == .busy && (error as? SQLiteError)?.isDamage == false
        }
        try writer.execute("ROLLBACK")
    }
}
