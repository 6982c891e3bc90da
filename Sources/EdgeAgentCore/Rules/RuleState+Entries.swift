/// The rule state as entries, one per machine, context value and published tag, so a commit
/// stores only the entries a reading changed instead of the whole state.
///
/// | entry | changes when |
/// |---|---|
/// | `.machine(name)` | any of its rules moved (a reading or time passing); compared whole, machines are few |
/// | `.value(tag)` | a context tag of the reading had a good sample |
/// | `.published(tag)` | a published tag of the reading became a `tag.changed` |
///
/// Values and published tags change only for tags of the reading, so finding what changed costs
/// the size of the reading and the number of machines, not the size of the state (published
/// tags are kept by device, `PublishedTags`, so the rows of a reading's entries cost its devices'
/// tags alone).
extension RuleState {
    public enum Entry: Hashable, Sendable {
        case machine(String)
        case value(String)
        case published(String)
    }

    /// Every entry the state holds.
    public var entries: [Entry] {
        machines.keys.map(Entry.machine) + values.keys.map(Entry.value) + published.tags.map(Entry.published)
    }

    /// The entries that differ between `old` and `self`, when only `reading` was applied in between.
    /// Takes the samples themselves, not a generic sequence of tags: called across the module
    /// boundary, a generic parameter stays unspecialized (a metadata lookup per sample).
    public func changed(from old: RuleState, reading: [Sample]) -> [Entry] {
        var changed = machines.compactMap { name, machine in old.machines[name] == machine ? nil : Entry.machine(name) }
        // A line with no context and no published tag: only machines can change (no set to fill).
        guard !values.isEmpty || !published.isEmpty || !old.values.isEmpty || !old.published.isEmpty else {
            return changed
        }
        // A tag read twice is compared and listed once (a historian chunk reads each tag
        // thousands of times: one set insert each, not four dictionary lookups); a kind of entry
        // that neither state holds is not looked up. A reading's samples come device by device:
        // each run of one device's samples looks that device's published tags up once.
        let hasValues = !values.isEmpty || !old.values.isEmpty
        let hasPublished = !published.isEmpty || !old.published.isEmpty
        var seen = Set<String>()
        var device: Substring?, tags: [String: Published]?, oldTags: [String: Published]?
        for sample in reading where seen.insert(sample.tag).inserted {
            let tag = sample.tag
            if hasValues, values[tag] != old.values[tag] { changed.append(.value(tag)) }
            guard hasPublished else { continue }
            let tagDevice = PublishedTags.device(of: tag)
            if tagDevice != device {
                (device, tags, oldTags) = (tagDevice, published.devices[tagDevice], old.published.devices[tagDevice])
            }
            if tags?[tag] != oldTags?[tag] { changed.append(.published(tag)) }
        }
        return changed
    }
}
