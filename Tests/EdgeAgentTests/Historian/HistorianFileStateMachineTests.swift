import EdgeAgentCore
import Testing

/// The life of a historian folder's files fed events, as `HistorianIngestor` feeds them: each
/// test a sequence of events and the actions that follow, with the time passed in.
@Suite struct HistorianFileStateMachineTests {
    typealias Machine = HistorianFileStateMachine

    static func config(settle: Duration = .seconds(2), onSuccess: HistorianConfig.OnSuccess = .archive)
        -> HistorianConfig
    {
        var config = HistorianConfig(name: "pi", directory: "/drop", timestampColumn: "Timestamp")
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.tags = [(source: "P1.COUNT", tag: "p1.count")]
        config.settle = settle
        config.onSuccess = onSuccess
        return config
    }

    static func file(_ name: String, size: Int64 = 100, modified: Int64 = 1) -> Machine.Entry {
        Machine.Entry(name: name, size: size, modified: modified)
    }

    /// An action as a line of the tables below (a log as its level and message).
    static func line(_ action: Machine.Action) -> String {
        switch action {
        case let .check(name): "check \(name)"
        case .loadProgress: "load progress"
        case let .digestPrefixes(lengths): "digest prefixes \(lengths)"
        case let .feed(from, ordered): "feed from \(from)" + (ordered ? "" : ", sorted")
        case let .commit(commit):
            "commit \(commit.state.map { "\($0.key)=\($0.value ?? "nil")" }) \(commit.record.map { "record \($0.outcome.rawValue) \($0.rows)" } ?? "")"
        case let .move(name, destination): "move \(name) to \(destination)"
        case let .count(result): "count \(result)"
        case let .log(log): "\(log.level) \(log.message)"
        }
    }

    static func lines(_ actions: [Machine.Action]) -> [String] { actions.map(line) }

    /// A machine with `name` (100 bytes) listed, settled and checked as `check`.
    static func checked(
        _ check: Machine.Check, _ name: String = "a.csv", known: Machine.Known? = nil,
        config: HistorianConfig = config()
    ) -> (Machine, [String]) {
        var machine = Machine(config: config, textTags: [])
        _ = machine.listed([file(name)], now: .zero)
        #expect(lines(machine.listed([file(name)], now: config.settle)) == ["check \(name)"])
        let actions = machine.checked(name, check, hash: "h1", length: 100, known: known, now: config.settle)
        return (machine, lines(actions))
    }

    // MARK: - Settle, order, links

    /// | listing at | sizes | checked |
    @Test(
        arguments: [
            ([0, 1], [100, 100], [[], []]),
            ([0, 2], [100, 100], [[], ["a.csv"]]),
            ([0, 1, 3], [100, 200, 200], [[], [], ["a.csv"]]),
            ([0, 1, 2], [100, 200, 200], [[], [], []]),
        ] as [([Int], [Int64], [[String]])])
    func aFileIsCheckedOnceItsSizeAndModificationHoldForTheSettleTime(
        times: [Int], sizes: [Int64], checked: [[String]]
    ) {
        var machine = Machine(config: Self.config(), textTags: [])
        for (i, time) in times.enumerated() {
            let actions = machine.listed([Self.file("a.csv", size: sizes[i])], now: .seconds(time))
            #expect(Self.lines(actions) == checked[i].map { "check \($0)" }, "listing at \(time) s")
        }
    }

    @Test func withNoSettleTimeAFileIsCheckedAtItsFirstListing() {
        var machine = Machine(config: Self.config(settle: .zero), textTags: [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .zero)) == ["check a.csv"])
    }

    @Test func waitingFilesAreCheckedOldestModificationFirst() {
        var machine = Machine(config: Self.config(settle: .zero), textTags: [])
        let files = [
            Self.file("c.csv", modified: 30), Self.file("b.csv", modified: 10), Self.file("a.csv", modified: 30),
        ]
        #expect(Self.lines(machine.listed(files, now: .zero)) == ["check b.csv", "check a.csv", "check c.csv"])
    }

    @Test func aSymbolicLinkIsNeverCheckedAndReportedOnceWhileItStays() {
        var machine = Machine(config: Self.config(settle: .zero), textTags: [])
        let link = Machine.Entry(name: "x.csv", isLink: true)
        let warning = "warning Historian folder holds a symbolic link; it is never read."
        #expect(Self.lines(machine.listed([link], now: .zero)) == [warning])
        #expect(Self.lines(machine.listed([link], now: .seconds(1))) == [])
        #expect(Self.lines(machine.listed([], now: .seconds(2))) == [])
        #expect(Self.lines(machine.listed([link], now: .seconds(3))) == [warning], "a new link")
    }

    // MARK: - Retries

    /// | failures | retry after |
    @Test(arguments: [(1, 5), (2, 10), (3, 20), (4, 40), (5, 80), (6, 160), (7, 300), (12, 300)])
    func aFileLeftWhereItIsWaitsLongerAfterEachFailure(failures: Int, seconds: Int) {
        #expect(Machine.retryDelay(failures: failures) == .seconds(seconds))
    }

    @Test func anUnreadableFileIsCheckedAgainAtItsRetryTime() {
        var machine = Machine(config: Self.config(settle: .zero), textTags: [])
        let a = Self.file("a.csv")
        #expect(Self.lines(machine.listed([a], now: .zero)) == ["check a.csv"])
        #expect(
            Self.lines(machine.unreadable("a.csv", reason: "Permission denied", now: .zero)) == [
                "error Historian file cannot be read; left where it is, tried again later."
            ])
        #expect(Self.lines(machine.listed([a], now: .milliseconds(4999))) == [])
        #expect(Self.lines(machine.listed([a], now: .seconds(5))) == ["check a.csv"])
        let second = machine.unreadable("a.csv", reason: "Permission denied", now: .seconds(5))
        guard case let .log(log) = second.first else {
            Issue.record("\(second)")
            return
        }
        #expect(log.metadata == ["file": "a.csv", "error": "Permission denied", "retry_in": "10 s"])
        #expect(Self.lines(machine.listed([a], now: .seconds(14))) == [], "10 s after the second failure")
        #expect(Self.lines(machine.listed([a], now: .seconds(15))) == ["check a.csv"])
    }

    @Test func aFileLeftWhereItIsIsCheckedAgainOnceItChangesAndSettles() {
        var machine = Machine(config: Self.config(), textTags: [])
        _ = machine.listed([Self.file("a.csv")], now: .zero)
        _ = machine.listed([Self.file("a.csv")], now: .seconds(2))
        _ = machine.checked("a.csv", .unreadable("EIO"), hash: "", length: 0, known: nil, now: .seconds(2))
        let touched = Self.file("a.csv", modified: 2)
        #expect(Self.lines(machine.listed([touched], now: .seconds(3))) == [])
        #expect(Self.lines(machine.listed([touched], now: .seconds(5))) == ["check a.csv"], "before its retry time")
    }

    @Test func aFileThatCannotBeMovedWaitsForItsRetry() {
        var (machine, actions) = Self.checked(.valid(rows: 2, ordered: true))
        #expect(actions == ["load progress"])
        #expect(Self.lines(machine.progressLoaded([:])) == ["feed from 0"])
        _ = machine.fed(rows: 2, changed: nil)
        #expect(
            Self.lines(machine.moved("a.csv", ok: false, now: .seconds(2))) == [
                "error Historian file cannot be moved; left where it is, tried again later."
            ])
        // Its retry time 5 s on, then it settles again (a file released at once would be
        // checked at 6 s, 2 s after the listing at 4 s).
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(4))) == [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(6))) == [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(7))) == [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(9))) == ["check a.csv"])
    }

    @Test func aFileWhoseReadingFailedKeepsItsChunksAndWaitsForItsRetry() {
        var (machine, _) = Self.checked(.valid(rows: 2, ordered: true))
        _ = machine.progressLoaded([:])
        #expect(
            Self.lines(machine.feedFailed(reason: "ENOSPC", now: .seconds(2))) == [
                "error Historian file could not be taken; left where it is, tried again later."
            ])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(4))) == [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(6))) == [], "released, it would be")
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(7))) == [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .seconds(9))) == ["check a.csv"])
        _ = machine.checked("a.csv", .valid(rows: 2, ordered: true), hash: "h1", length: 100, known: nil, now: .zero)
        #expect(
            Self.lines(machine.progressLoaded(["historian.pi.file.h1": "1 100 a.csv"])) == [
                "notice Resuming a historian file after its last committed rows.", "feed from 1",
            ])
    }

    @Test func afterAStopNothingMoreIsChecked() {
        var machine = Machine(config: Self.config(settle: .zero), textTags: [])
        #expect(Self.lines(machine.listed([Self.file("a.csv")], now: .zero)) == ["check a.csv"])
        machine.stopped()
        #expect(Self.lines(machine.listed([Self.file("a.csv"), Self.file("b.csv")], now: .seconds(1))) == [])
    }

    // MARK: - Pass one's outcome

    @Test func aFileThatChangedWhileCheckedIsCountedAndSettlesAgain() {
        var (machine, actions) = Self.checked(.changed("rows were appended"))
        #expect(
            actions == [
                "count changed",
                "notice Historian file changed while it was checked; checked again once it settles.",
            ])
        #expect(Self.lines(machine.listed([Self.file("a.csv", size: 150)], now: .seconds(2))) == [])
        #expect(Self.lines(machine.listed([Self.file("a.csv", size: 150)], now: .seconds(4))) == ["check a.csv"])
    }

    @Test func aMalformedFileIsRecordedAndRejectedWithItsErrorFile() {
        let (_, actions) = Self.checked(.malformed(.init(line: 3, column: 3, reason: "Value: '12a' is not a number")))
        #expect(
            actions == [
                "commit [] record rejected 0", "count rejected",
                "error Historian file rejected; no row of it was used.",
                #"move a.csv to rejected(errorText: Optional("a.csv: line 3, column 3: Value: \'12a\' is not a number\n"))"#,
            ])
    }

    /// What becomes of a file whose content is recorded: | check | record | actions |
    @Test(
        arguments: [
            // The same content under another name: a duplicate, moved as the first one was.
            (
                Machine.Check.valid(rows: 2, ordered: true),
                Machine.Known(source: "pi", name: "b.csv", outcome: .ok, config: "F"),
                [
                    "count duplicate", "warning Historian file has the same content as one taken before; skipped.",
                    "move a.csv to processed",
                ]
            ),
            (
                .malformed(.init(line: 2, column: 1, reason: "bad")),
                Machine.Known(source: "pi", name: "b.csv", outcome: .rejected, config: "F"),
                [
                    "count duplicate", "warning Historian file has the same content as one taken before; skipped.",
                    "move a.csv to rejected(errorText: nil)",
                ]
            ),
            // Recorded under its name by this folder, not yet in processed/: a stop came before its move.
            (
                .valid(rows: 2, ordered: true),
                Machine.Known(source: "pi", name: "a.csv", outcome: .ok, config: "F"),
                [
                    "notice Historian file was ingested before the agent stopped; only its move was left.",
                    "count ok", "move a.csv to processed",
                ]
            ),
            // ... already in processed/: the same content dropped again, a duplicate.
            (
                .valid(rows: 2, ordered: true),
                Machine.Known(source: "pi", name: "a.csv", outcome: .ok, config: "F", inProcessed: true),
                [
                    "count duplicate", "warning Historian file has the same content as one taken before; skipped.",
                    "move a.csv to processed",
                ]
            ),
            // Another folder's file: a duplicate.
            (
                .valid(rows: 2, ordered: true),
                Machine.Known(source: "mes", name: "a.csv", outcome: .ok, config: "F"),
                [
                    "count duplicate", "warning Historian file has the same content as one taken before; skipped.",
                    "move a.csv to processed",
                ]
            ),
            // A rejection left by a stop before its move: rejected again, its record kept.
            (
                .malformed(.init(line: 2, column: 1, reason: "bad")),
                Machine.Known(source: "pi", name: "a.csv", outcome: .rejected, config: "F"),
                [
                    "count rejected", "error Historian file rejected; no row of it was used.",
                    #"move a.csv to rejected(errorText: Optional("a.csv: line 2, column 1: bad\n"))"#,
                ]
            ),
        ] as [(Machine.Check, Machine.Known, [String])])
    func aContentRecordedBeforeIsMovedAsItsRecordSays(check: Machine.Check, known: Machine.Known, actions: [String]) {
        var known = known
        known.config = Machine.fingerprint(Self.config(), textTags: [])
        #expect(Self.checked(check, known: known).1 == actions)
    }

    @Test func aContentRejectedUnderAnotherConfigurationIsCheckedAsNew() {
        let known = Machine.Known(source: "pi", name: "b.csv", outcome: .rejected, config: "another")
        let (_, valid) = Self.checked(.valid(rows: 2, ordered: true), known: known)
        #expect(
            valid == [
                "notice Historian file was rejected under another configuration; checked again.", "load progress",
            ])
        let (_, malformed) = Self.checked(.malformed(.init(line: 2, column: 1, reason: "bad")), known: known)
        #expect(
            malformed.prefix(2) == [
                "notice Historian file was rejected under another configuration; checked again.",
                "commit [] record rejected 0",
            ], "its record is replaced by this outcome")
    }

    @Test func aRecordCarriesTheConfigurationItWasCheckedUnder() {
        var machine = Machine(config: Self.config(settle: .zero), textTags: [])
        _ = machine.listed([Self.file("a.csv")], now: .zero)
        let actions = machine.checked(
            "a.csv", .malformed(.init(line: 2, column: 1, reason: "bad")), hash: "h1", length: 100, known: nil,
            now: .zero)
        guard case let .commit(commit) = actions.first else {
            Issue.record("\(actions)")
            return
        }
        #expect(
            commit.record == .init(hash: "h1", name: "a.csv", rows: 0, outcome: .rejected, config: machine.fingerprint))
    }

    /// | setting changed | same fingerprint |
    @Test(
        arguments: [
            ("value column", false), ("tag map", false), ("time zone", false), ("text tags", false),
            ("settle", true), ("directory", true), ("on_success", true),
        ] as [(String, Bool)])
    func theFingerprintFollowsOnlyWhatDecidesHowAFileReads(setting: String, same: Bool) {
        var changed = Self.config()
        var textTags: Set<String> = []
        switch setting {
        case "value column": changed.valueColumn = "Val"
        case "tag map": changed.tags = [(source: "P1.COUNT", tag: "p2.count")]
        case "time zone": changed.timezone = "Europe/Berlin"
        case "text tags": textTags = ["p1.count"]
        case "settle": changed.settle = .seconds(9)
        case "directory": changed.directory = "/elsewhere"
        default: changed.onSuccess = .delete
        }
        let fingerprint = Machine.fingerprint(changed, textTags: textTags)
        #expect((fingerprint == Machine.fingerprint(Self.config(), textTags: [])) == same)
    }

    // MARK: - Progress and pass two

    @Test func aNewFileIsFedFromItsStartAndItsChunksCarryItsProgressThenItsRecord() {
        var (machine, actions) = Self.checked(.valid(rows: 3, ordered: true))
        #expect(actions == ["load progress"])
        #expect(Self.lines(machine.progressLoaded(["historian.pi.file.other": "5 900 b.csv"])) == ["feed from 0"])
        #expect(
            machine.commit(rowsDone: 2, last: false, changed: nil)
                == .init(state: [.init("historian.pi.file.h1", "2 100 a.csv")]))
        #expect(
            machine.commit(rowsDone: 3, last: true, changed: nil)
                == .init(
                    state: [.init("historian.pi.file.h1", nil), .init("historian.pi.last", "h1 3 100 a.csv")],
                    record: .init(hash: "h1", name: "a.csv", rows: 3, outcome: .ok, config: machine.fingerprint)))
        #expect(
            Self.lines(machine.fed(rows: 3, changed: nil)) == [
                "info Historian file ingested.", "count ok", "move a.csv to processed",
            ])
        #expect(machine.moved("a.csv", ok: true, now: .seconds(2)).isEmpty)
        #expect(Self.lines(machine.listed([], now: .seconds(3))) == [])
    }

    @Test func withOnSuccessDeleteATakenFileIsDeleted() {
        var (machine, _) = Self.checked(.valid(rows: 3, ordered: true), config: Self.config(onSuccess: .delete))
        _ = machine.progressLoaded([:])
        #expect(Self.lines(machine.fed(rows: 3, changed: nil)).last == "move a.csv to deleted")
    }

    @Test func aFileNotInTimeOrderIsSortedBeforeItIsFed() {
        var (machine, _) = Self.checked(.valid(rows: 3, ordered: false))
        #expect(Self.lines(machine.progressLoaded([:])) == ["feed from 0, sorted"])
    }

    @Test func aFileResumesAfterItsOwnRowsAndDropsAnEarlierReleasesFolderRow() {
        var (machine, _) = Self.checked(.valid(rows: 3, ordered: true))
        let stored = ["historian.pi.file.h1": "2 100 a.csv", "historian.pi": "h1 1", "historian.pi.file.h2": "7"]
        #expect(
            Self.lines(machine.progressLoaded(stored)) == [
                "notice Resuming a historian file after its last committed rows.", "feed from 2",
            ])
        #expect(machine.commit(rowsDone: 3, last: true, changed: nil).state.last == .init("historian.pi", nil))
    }

    @Test func aFileThatChangedWhileTakenKeepsItsProgressAndGoesToProcessedUnlessReplaced() {
        var (machine, _) = Self.checked(.valid(rows: 3, ordered: true), config: Self.config(onSuccess: .delete))
        _ = machine.progressLoaded([:])
        #expect(
            machine.commit(rowsDone: 1, last: true, changed: "it was rewritten")
                == .init(state: [.init("historian.pi.file.h1", "1 100 a.csv")]))
        #expect(
            Self.lines(machine.fed(rows: 1, changed: "it was rewritten")) == [
                "count changed",
                "warning Historian file changed while it was taken; only the rows checked before were used.",
                "move a.csv to processedUnlessReplaced",
            ])
    }

    /// A file begun (or the last finished) under this name and shorter: | stored | prefix digests | actions | rows removed at the end |
    @Test(
        arguments: [
            (
                ["historian.pi.file.h0": "40 60 a.csv"], ["h0"],
                [
                    "digest prefixes [60]",
                    "warning Historian file grew after it was begun; taken after the rows already sent.",
                    "feed from 40",
                ],
                ["historian.pi.file.h0"]
            ),
            (
                ["historian.pi.last": "h0 50 80 a.csv"], ["h0"],
                [
                    "digest prefixes [80]",
                    "warning Historian file grew after it was begun; taken after the rows already sent.",
                    "feed from 50",
                ], []
            ),
            (
                ["historian.pi.file.h0": "40 60 a.csv", "historian.pi.file.hz": "80 90 a.csv"], ["h0", "hz"],
                [
                    "digest prefixes [60, 90]",
                    "warning Historian file grew after it was begun; taken after the rows already sent.",
                    "feed from 80",
                ],
                ["historian.pi.file.h0", "historian.pi.file.hz"]
            ),
            (["historian.pi.file.h0": "40 60 a.csv"], ["another"], ["digest prefixes [60]", "feed from 0"], []),
            (["historian.pi.file.h0": "40 60 a.csv"], [nil], ["digest prefixes [60]", "feed from 0"], []),
            (["historian.pi.file.h0": "40 60 b.csv"], [], ["feed from 0"], []),
            (["historian.pi.file.h0": "40 160 a.csv"], [], ["feed from 0"], []),
        ] as [([String: String], [String?], [String], [String])])
    func aFileThatGrewIsTakenAfterTheRowsAlreadySent(
        stored: [String: String], digests: [String?], actions: [String], removed: [String]
    ) {
        var (machine, _) = Self.checked(.valid(rows: 90, ordered: true))
        var seen = Self.lines(machine.progressLoaded(stored))
        if seen.first?.hasPrefix("digest") == true { seen += Self.lines(machine.prefixesDigested(digests)) }
        #expect(seen == actions)
        let grown = actions.contains { $0.hasPrefix("warning") }
        let last = machine.commit(rowsDone: 90, last: true, changed: nil).state.dropFirst(2)
        #expect(last.map(\.key) == removed)
        #expect(Self.lines(machine.fed(rows: 90, changed: nil)).contains(grown ? "count changed" : "count ok"))
    }

    /// A content resumed from its own rows drops the row of the shorter content it grew from:
    /// left, it would resume a later content of that name from fewer rows than were sent.
    @Test func aFileResumedFromItsOwnRowsDropsTheRowOfThePrefixItGrewFrom() {
        var (machine, _) = Self.checked(.valid(rows: 90, ordered: true))
        let stored = ["historian.pi.file.h1": "85 100 a.csv", "historian.pi.file.h0": "40 60 a.csv"]
        #expect(Self.lines(machine.progressLoaded(stored)) == ["digest prefixes [60]"])
        #expect(
            Self.lines(machine.prefixesDigested(["h0"])) == [
                "notice Resuming a historian file after its last committed rows.", "feed from 85",
            ])
        let keys = machine.commit(rowsDone: 90, last: true, changed: nil).state.map(\.key)
        #expect(keys.contains("historian.pi.file.h0") && keys.contains("historian.pi.file.h1"))
        #expect(Self.lines(machine.fed(rows: 90, changed: nil)).contains("count ok"))
    }

    @Test func aFileNotInTimeOrderIsNeverTakenForAGrownOne() {
        var (machine, _) = Self.checked(.valid(rows: 90, ordered: false))
        #expect(Self.lines(machine.progressLoaded(["historian.pi.file.h0": "40 60 a.csv"])) == ["feed from 0, sorted"])
    }

    // MARK: - Names

    /// | in the folder already | the name a file gets |
    @Test(
        arguments: [
            ([], "bad.csv"),
            (["bad.csv"], "bad.1.csv"),
            (["bad.csv.error.txt"], "bad.1.csv"),
            (["bad.csv", "bad.1.csv", "bad.2.csv.error.txt"], "bad.3.csv"),
            (["other.csv"], "bad.csv"),
        ] as [(Set<String>, String)])
    func aNameAlreadyTakenInAFolderGetsTheFirstFreeNumber(taken: Set<String>, name: String) {
        #expect(Machine.freeName(for: "bad.csv", isTaken: taken.contains) == name)
    }

    @Test func aNameWithoutExtensionGetsItsNumberAtTheEnd() {
        #expect(Machine.freeName(for: "export", isTaken: ["export"].contains) == "export.1")
    }
}
