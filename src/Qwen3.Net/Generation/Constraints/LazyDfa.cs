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

    /// <summary>What <see cref="LazyDfa.StringReach"/> found for this state; <see cref="LazyDfa.UnknownReach"/> until then.</summary>
    public int Reach = LazyDfa.UnknownReach;
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

    public const int UnknownReach = -2;

    /// <summary>The state is not inside a string in a way plain tokens can be decided by their length.</summary>
    public const int NotInString = -1;

    /// <summary>
    /// For a state inside a JSON string, the most characters a plain token (<see cref="TokenVocabulary.PlainChars"/>) may
    /// add, capped at <paramref name="cap"/>: every plain token with at most that many characters is allowed and no
    /// other. <see cref="NotInString"/> when plain tokens are not decided by their length alone here.
    /// </summary>
    /// <remarks>
    /// Such a state holds only configurations that start a string character (all plain characters lead to one state)
    /// or refuse every plain first byte, so one plain character steps it like the byte 'a' does; following that chain
    /// gives the reach. The result is kept on each state of the chain, so the positions of a long string cost one step each.
    /// </remarks>
    public int StringReach(DfaState state, int cap)
    {
        var chain = new List<DfaState>();
        DfaState current = state;
        int reach;
        while (true)
        {
            reach = Volatile.Read(ref current.Reach);
            if (reach != UnknownReach)
            {
                break;
            }

            bool? startsCharacters = StartsCharacters(current);
            DfaState? next = startsCharacters == null ? null : Step(current, (byte)'a');

            // A state holding a character start that still died (it could not finish its character) is left to the full walk.
            reach = next == null || next.IsDead == startsCharacters ? NotInString
                : next.IsDead ? 0
                : ReferenceEquals(next, current) ? cap
                : UnknownReach;
            if (reach != UnknownReach)
            {
                Volatile.Write(ref current.Reach, reach);
                break;
            }

            chain.Add(current);
            current = next!;
            if (chain.Count >= cap)
            {
                // The first state reaches the cap; the others are left for when a mask needs them.
                Volatile.Write(ref state.Reach, cap);
                return cap;
            }
        }

        for (int i = chain.Count - 1; i >= 0; i--)
        {
            reach = reach == NotInString ? NotInString : Math.Min(cap, reach + 1);
            Volatile.Write(ref chain[i].Reach, reach);
        }

        return reach;
    }

    /// <summary>True when the state's configurations all refuse plain tokens or start string characters and some start one; false when all refuse them; null otherwise.</summary>
    private bool? StartsCharacters(DfaState state)
    {
        ConfigSet configs = state.Configs;
        if (configs.Count == 0)
        {
            return null;
        }

        StringRole[] roles = _stepper.Automaton.StringRoles;
        bool starts = false;
        for (int i = 0; i < configs.Count; i++)
        {
            switch (roles[configs.States[i]])
            {
                case StringRole.CharStart:
                    starts = true;
                    break;
                case StringRole.Other:
                    return null;
            }
        }

        return starts;
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
