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

    /// <summary>What <see cref="LazyDfa.FindClassRun"/> found for this state, once computed.</summary>
    public ClassRun? Run;

    /// <summary>The token mask of this state, once computed and if the cache had room.</summary>
    public ulong[]? Mask;

    /// <summary>What <see cref="LazyDfa.StringReach"/> found for this state; <see cref="LazyDfa.UnknownReach"/> until then.</summary>
    public int Reach = LazyDfa.UnknownReach;

    /// <summary>What <see cref="LazyDfa.CountedPositionOf"/> found for this state, once computed.</summary>
    public CountedPosition? Counted;
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
    private readonly CountedPosition _noPosition;

    public LazyDfa(Automaton automaton, int maxStates)
    {
        _stepper = new AutomatonStepper(automaton);
        _maxStates = maxStates;
        var empty = new ConfigSet();
        Dead = new DfaState(empty, new MaskKey(empty), interned: true);
        _noPosition = new CountedPosition(Dead, 0, 0, StringLex.None);
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

    /// <summary>Class runs count at most this many steps ahead (see <see cref="ClassRun.AtLeast"/>), so a first visit never determinizes far ahead of the walk.</summary>
    public const int MaxRunSteps = 32;

    /// <summary>
    /// A class of ASCII bytes that all step <paramref name="state"/> to one state, and that state's successors likewise,
    /// with how many such steps stay alive: a mask walk then decides every trie subtree spelled only with the class by
    /// its tokens' lengths, without stepping through it (the positions of <c>[A-Za-z0-9]{0,30}</c>, digits, hex).
    /// </summary>
    /// <remarks>
    /// The class is the largest set of bytes taking the same automaton edges from the state; following one of its bytes
    /// gives a chain of states, and the class shrinks to what every state of the chain treats alike. The result is kept
    /// on each state of the chain, so the positions of a bounded repetition cost about one step each; a chain still
    /// alive after <see cref="MaxRunSteps"/> steps gives a lower bound (<see cref="ClassRun.AtLeast"/>).
    /// </remarks>
    public ClassRun FindClassRun(DfaState state)
    {
        if (Volatile.Read(ref state.Run) is { } known && Strong(known))
        {
            return known;
        }

        (ulong low, ulong high, int representative) = LargestClass(state);
        if (representative < 0)
        {
            Volatile.Write(ref state.Run, ClassRun.None);
            return ClassRun.None;
        }

        byte r = (byte)representative;
        var chain = new List<DfaState> { state };
        DfaState current = state;
        int reach;
        bool atLeast = false;
        while (true)
        {
            DfaState next = Step(current, r);
            if (next.IsDead)
            {
                reach = chain.Count - 1;
                break;
            }

            if (ReferenceEquals(next, current))
            {
                reach = ClassRun.Unbounded;
                break;
            }

            if (Volatile.Read(ref next.Run) is { } run && run.Contains(r) && Strong(run))
            {
                low &= run.Low;
                high &= run.High;
                reach = run.Reach == ClassRun.Unbounded ? run.Reach : chain.Count + run.Reach;
                atLeast = run.AtLeast;
                break;
            }

            if (chain.Count >= MaxRunSteps)
            {
                reach = chain.Count;
                atLeast = true;
                break;
            }

            (ulong nextLow, ulong nextHigh) = ClassOf(next, r);
            low &= nextLow;
            high &= nextHigh;
            chain.Add(next);
            current = next;
        }

        var result = new ClassRun(low, high, reach, atLeast);
        Volatile.Write(ref state.Run, result);
        for (int i = 1; i < chain.Count; i++)
        {
            if (Volatile.Read(ref chain[i].Run) is not { } old || !Strong(old))
            {
                Volatile.Write(ref chain[i].Run, new ClassRun(low, high, reach == ClassRun.Unbounded ? reach : reach - i, atLeast));
            }
        }

        return result;
    }

    /// <summary>
    /// Whether a kept run is good enough to reuse: exact, or a lower bound of at least half <see cref="MaxRunSteps"/>.
    /// A bound kept on the later states of a chain shrinks by one per state, so weaker ones are counted again.
    /// </summary>
    private static bool Strong(ClassRun run) => !run.AtLeast || run.Reach >= MaxRunSteps / 2;

    /// <summary>Smaller classes get no run: few tokens are spelled with them, and the walk is cheaper than finding the run (digits: Qwen3 spells numbers one digit per token).</summary>
    private const int MinClassBytes = 16;

    /// <summary>The largest class of live ASCII bytes that <see cref="ClassOf"/> finds in <paramref name="state"/>, and one of its bytes (-1 when none has <see cref="MinClassBytes"/>).</summary>
    private (ulong Low, ulong High, int Representative) LargestClass(DfaState state)
    {
        Automaton a = _stepper.Automaton;
        ulong liveLow = 0;
        ulong liveHigh = 0;
        for (int i = 0; i < state.Configs.Count; i++)
        {
            int s = state.Configs.States[i];
            for (int e = a.EdgeStarts[s]; e < a.EdgeStarts[s + 1]; e++)
            {
                (ulong lo, ulong hi) = AsciiRange(a.EdgeLo[e], a.EdgeHi[e]);
                liveLow |= lo;
                liveHigh |= hi;
            }
        }

        (ulong Low, ulong High, int Representative) best = (0, 0, -1);
        int bestSize = MinClassBytes - 1;
        while (System.Numerics.BitOperations.PopCount(liveLow) + System.Numerics.BitOperations.PopCount(liveHigh) > bestSize)
        {
            int b = liveLow != 0 ? System.Numerics.BitOperations.TrailingZeroCount(liveLow) : 64 + System.Numerics.BitOperations.TrailingZeroCount(liveHigh);
            (ulong low, ulong high) = ClassOf(state, (byte)b);
            int size = System.Numerics.BitOperations.PopCount(low) + System.Numerics.BitOperations.PopCount(high);
            if (size > bestSize)
            {
                best = (low, high, b);
                bestSize = size;
            }

            liveLow &= ~low;
            liveHigh &= ~high;
        }

        return best;
    }

    /// <summary>
    /// The ASCII bytes that take exactly the same (configuration, target) moves out of <paramref name="state"/> as byte
    /// <paramref name="b"/>, and so step it to the same state; never all 128, so a subtree holding a non-ASCII byte
    /// (<see cref="TokenTrie.SubtreeAscii"/> all ones) never fits in it.
    /// </summary>
    private (ulong Low, ulong High) ClassOf(DfaState state, byte b)
    {
        Automaton a = _stepper.Automaton;
        ulong low = ulong.MaxValue;
        ulong high = ulong.MaxValue;
        for (int i = 0; i < state.Configs.Count; i++)
        {
            int s = state.Configs.States[i];
            int first = a.EdgeStarts[s];
            int end = a.EdgeStarts[s + 1];
            for (int e = first; e < end; e++)
            {
                int target = a.EdgeTarget[e];
                if (Array.IndexOf(a.EdgeTarget, target, first, e - first) >= 0)
                {
                    continue; // this target's bytes were gathered at its first edge
                }

                ulong moveLow = 0;
                ulong moveHigh = 0;
                for (int f = e; f < end; f++)
                {
                    if (a.EdgeTarget[f] == target)
                    {
                        (ulong lo, ulong hi) = AsciiRange(a.EdgeLo[f], a.EdgeHi[f]);
                        moveLow |= lo;
                        moveHigh |= hi;
                    }
                }

                bool fires = b < 64 ? (moveLow & (1UL << b)) != 0 : (moveHigh & (1UL << (b - 64))) != 0;
                low &= fires ? moveLow : ~moveLow;
                high &= fires ? moveHigh : ~moveHigh;
            }
        }

        if ((low & high) == ulong.MaxValue)
        {
            // Keep one byte out so the class is never mistaken for a non-ASCII subtree.
            if (b == 0)
            {
                high &= ~(1UL << 63);
            }
            else
            {
                low &= ~1UL;
            }
        }

        return (low, high);
    }

    /// <summary>The ASCII part of the byte range [lo, hi] as two words.</summary>
    private static (ulong Low, ulong High) AsciiRange(byte lo, byte hi)
    {
        static ulong Bits(int from, int to) => from > to ? 0 : (to - from == 63 ? ulong.MaxValue : ((1UL << (to - from + 1)) - 1) << from);
        return (Bits(lo, Math.Min((int)hi, 63)), Bits(Math.Max(lo - 64, 0), Math.Min(hi - 64, 63)));
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
        CountedLoops loops = _stepper.Automaton.Loops;
        bool starts = false;
        for (int i = 0; i < configs.Count; i++)
        {
            switch (roles[configs.States[i]])
            {
                // A counted string at its maxLength refuses every character, as the state after the last position did when unrolled.
                case StringRole.CharStart when !loops.IsFull(configs.States[i], configs.Counts[i]):
                    starts = true;
                    break;
                case StringRole.Other:
                    return null;
            }
        }

        return starts;
    }

    /// <summary>
    /// For a state inside a counted string other than at its <c>minLength</c> (see <see cref="CountedPosition"/>):
    /// the state with the same configurations counted at <c>minLength</c>, and how this one's count differs; null when
    /// the configurations are not all in counted strings with the same bounds, count and lexer position.
    /// </summary>
    public CountedPosition? CountedPositionOf(DfaState state)
    {
        CountedPosition? position = Volatile.Read(ref state.Counted);
        if (position == null)
        {
            position = FindCountedPosition(state);
            Volatile.Write(ref state.Counted, position);
        }

        return ReferenceEquals(position, _noPosition) ? null : position;
    }

    private CountedPosition FindCountedPosition(DfaState state)
    {
        ConfigSet configs = state.Configs;
        CountedLoops loops = _stepper.Automaton.Loops;
        int first = configs.Count == 0 || configs.Accepting ? -1 : loops.LoopOf[configs.States[0]];
        if (first < 0)
        {
            return _noPosition;
        }

        int min = loops.Min[first];
        int max = loops.Max[first];
        int count = configs.Counts[0];
        StringLex lex = loops.Lex[configs.States[0]];
        if (lex == StringLex.None || count == min)
        {
            return _noPosition;
        }

        for (int i = 1; i < configs.Count; i++)
        {
            int loop = loops.LoopOf[configs.States[i]];
            if (loop < 0 || loops.Min[loop] != min || loops.Max[loop] != max || configs.Counts[i] != count || loops.Lex[configs.States[i]] != lex)
            {
                return _noPosition;
            }
        }

        DfaState reference;
        lock (_lock)
        {
            _scratch.CopyFrom(configs, count: min);
            reference = Intern(_scratch);
        }

        return new CountedPosition(reference, max < 0 ? CountedPosition.Unbounded : max - count, min - count, lex);
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

/// <summary>A class of ASCII bytes (two 64-bit words) that steps a DFA state and its successors alike, and how many of its bytes the state still takes.</summary>
internal sealed class ClassRun(ulong low, ulong high, int reach, bool atLeast)
{
    /// <summary>Reach of a class that loops back to the same state: any number of its bytes.</summary>
    public const int Unbounded = int.MaxValue;

    /// <summary>No class (no large class of ASCII bytes is live): never matches a subtree.</summary>
    public static ClassRun None { get; } = new(0, 0, 0, atLeast: false);

    /// <summary>Members 0-63.</summary>
    public ulong Low { get; } = low;

    /// <summary>Members 64-127.</summary>
    public ulong High { get; } = high;

    /// <summary>Tokens spelled only with the class are allowed when they have at most this many bytes, and refused otherwise unless <see cref="AtLeast"/>.</summary>
    public int Reach { get; } = reach;

    /// <summary>Counting stopped early: longer class tokens may be allowed too and must be walked.</summary>
    public bool AtLeast { get; } = atLeast;

    public bool Contains(byte b) => b < 64 ? (Low & (1UL << b)) != 0 : b < 128 && (High & (1UL << (b - 64))) != 0;

    /// <summary>Whether every token of at most <paramref name="maxLength"/> class bytes is decided by <see cref="Reach"/>.</summary>
    public bool Decides(int maxLength) => !AtLeast || maxLength <= Reach;
}
