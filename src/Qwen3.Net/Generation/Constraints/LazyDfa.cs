namespace Qwen3.Net.Generation.Constraints;

/// <summary>A set of automaton configurations reached by some input, with its byte transitions filled in as they are first needed.</summary>
internal sealed class DfaState
{
    public DfaState(ConfigSet configs, MaskKey key, bool interned)
    {
        Configs = configs;
        Key = key;
        Interned = interned;
    }

    public ConfigSet Configs { get; }

    public MaskKey Key { get; }

    /// <summary>Kept in the DFA's table, so transitions into and out of it may be stored.</summary>
    public bool Interned { get; }

    public bool Accepting => Configs.Accepting;

    public bool IsDead => Configs.IsDead;

    /// <summary>Successor per byte; null until computed. Written under the DFA's lock, read without it.</summary>
    public DfaState?[]? Next;

    /// <summary>ASCII bytes that lead from this state back to itself (two words), once computed.</summary>
    public ulong[]? SelfLoops;

    /// <summary>The token mask of this state, once computed and if the cache had room.</summary>
    public ulong[]? Mask;
}

/// <summary>
/// Determinizes the pushdown automaton lazily: each distinct configuration set (states plus interned stacks) becomes one
/// <see cref="DfaState"/>, so repeated bytes in a mask walk cost one array lookup instead of an NFA step.
/// </summary>
/// <remarks>Thread-safe: lookups are lock-free, computing a missing transition takes a lock. Past
/// <see cref="GrammarLimits.MaxDfaStates"/> new states are still computed but no longer stored.</remarks>
internal sealed class LazyDfa
{
    private readonly Lock _lock = new();
    private readonly AutomatonStepper _stepper;
    private readonly Dictionary<MaskKey, DfaState> _states = [];
    private readonly ConfigSet _scratch = new();
    private readonly int _maxStates;

    public LazyDfa(Automaton automaton, int maxStates)
    {
        _stepper = new AutomatonStepper(automaton);
        _maxStates = maxStates;
        var empty = new ConfigSet();
        Dead = new DfaState(empty, new MaskKey(empty), interned: true);
        _stepper.Start(_scratch);
        Start = Intern(_scratch);
    }

    public DfaState Start { get; }

    /// <summary>The state after rejected input.</summary>
    public DfaState Dead { get; }

    public DfaState Step(DfaState from, byte b)
    {
        DfaState?[]? next = from.Next;
        if (next != null && Volatile.Read(ref next[b]) is { } known)
        {
            return known;
        }

        lock (_lock)
        {
            _stepper.Step(from.Configs, b, _scratch);
            DfaState result = _scratch.IsDead ? Dead : Intern(_scratch);
            if (from.Interned && result.Interned)
            {
                from.Next ??= new DfaState?[256];
                Volatile.Write(ref from.Next[b], result);
            }

            return result;
        }
    }

    /// <summary>The ASCII bytes on which <paramref name="state"/> steps to itself, so a mask walk can accept whole trie subtrees spelled only with them.</summary>
    public ulong[] SelfLoops(DfaState state)
    {
        if (Volatile.Read(ref state.SelfLoops) is { } known)
        {
            return known;
        }

        var loops = new ulong[2];
        for (int b = 0; b < 0x80; b++)
        {
            if (ReferenceEquals(Step(state, (byte)b), state))
            {
                loops[b >> 6] |= 1UL << b;
            }
        }

        Volatile.Write(ref state.SelfLoops, loops);
        return loops;
    }

    private DfaState Intern(ConfigSet configs)
    {
        configs.Sort();
        var key = new MaskKey(configs);
        if (_states.TryGetValue(key, out DfaState? state))
        {
            return state;
        }

        var copy = new ConfigSet();
        copy.CopyFrom(configs);
        bool room = _states.Count < _maxStates;
        state = new DfaState(copy, key, room);
        if (room)
        {
            _states.Add(key, state);
        }

        return state;
    }
}
