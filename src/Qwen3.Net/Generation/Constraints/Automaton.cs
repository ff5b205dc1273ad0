namespace Qwen3.Net.Generation.Constraints;

/// <summary>A start/end pair of automaton states built Thompson-style: the end state has no outgoing edges until it is connected.</summary>
internal readonly record struct Fragment(int Start, int End);

/// <summary>How a byte state treats the first byte of a plain token (see <see cref="TokenVocabulary.PlainChars"/>).</summary>
internal enum StringRole : byte
{
    /// <summary>Refuses every byte a plain token can start with.</summary>
    Opaque,

    /// <summary>The start of one JSON string character that accepts every plain character, all of them leading to the same state.</summary>
    CharStart,

    /// <summary>Accepts some plain first bytes in a way of its own.</summary>
    Other,
}

/// <summary>A byte-level pushdown automaton: rules are NFAs over bytes whose states may call other rules (the stack).</summary>
/// <remarks>
/// Each state is one of: a byte state (edges on byte ranges), a call state (enter a rule, continue at a return state),
/// a return state (the end of its rule), or a plain state with only epsilon edges. <see cref="Closure"/> lists, for each
/// state, the non-plain states reachable through epsilon edges, so matching never walks epsilon edges at run time.
/// </remarks>
internal sealed class Automaton
{
    public const int Unreachable = int.MaxValue / 4;

    public Automaton(int[] edgeStarts, byte[] edgeLo, byte[] edgeHi, int[] edgeTarget, int[] callRule, int[] callReturn,
        bool[] isReturn, int[][] closure, int[] ruleStart, int[] minDepth, int maxDepth, StringRole[] stringRoles, CountedLoops loops)
    {
        StringRoles = stringRoles;
        Loops = loops;
        EdgeStarts = edgeStarts;
        EdgeLo = edgeLo;
        EdgeHi = edgeHi;
        EdgeTarget = edgeTarget;
        CallRule = callRule;
        CallReturn = callReturn;
        IsReturn = isReturn;
        Closure = closure;
        RuleStart = ruleStart;
        MinDepth = minDepth;
        MaxDepth = maxDepth;
    }

    /// <summary>Byte edges of state s are indices EdgeStarts[s] .. EdgeStarts[s+1]-1.</summary>
    public int[] EdgeStarts { get; }

    public byte[] EdgeLo { get; }

    public byte[] EdgeHi { get; }

    public int[] EdgeTarget { get; }

    /// <summary>Rule a call state enters, or -1.</summary>
    public int[] CallRule { get; }

    /// <summary>State a call state continues at after the rule returns.</summary>
    public int[] CallReturn { get; }

    public bool[] IsReturn { get; }

    public int[][] Closure { get; }

    public int[] RuleStart { get; }

    /// <summary>Stack depth a state still needs to finish its rule (<see cref="Unreachable"/> when it cannot finish), so the matcher never enters a state it cannot complete within <see cref="MaxDepth"/>.</summary>
    public int[] MinDepth { get; }

    public int MaxDepth { get; }

    /// <summary>Per state, how it treats plain tokens, so a mask inside a string can skip walking them.</summary>
    public StringRole[] StringRoles { get; }

    /// <summary>The bounded strings, whose characters are counted in the configurations rather than unrolled into states.</summary>
    public CountedLoops Loops { get; }

    public int StateCount => IsReturn.Length;
}

/// <summary>Builds an <see cref="Automaton"/> from fragments; refuses to grow past a state limit.</summary>
internal sealed class AutomatonBuilder
{
    private readonly List<List<(byte Lo, byte Hi, int Target)>?> _edges = [];
    private readonly List<List<int>?> _eps = [];
    private readonly List<int> _callRule = [];
    private readonly List<int> _callReturn = [];
    private readonly List<bool> _isReturn = [];
    private readonly List<int> _ruleStart = [];
    private readonly List<int> _ruleEnd = [];
    private readonly HashSet<int> _charStarts = [];
    private readonly List<(int First, int End, int Min, int Max)> _loops = [];
    private readonly int _maxStates;

    public AutomatonBuilder(int maxStates) => _maxStates = maxStates;

    /// <summary>Set by the schema compiler so a size error names the subschema that was being built.</summary>
    public string CurrentPointer { get; set; } = "";

    /// <summary>How many states exist so far; the next <see cref="NewState"/> returns this number.</summary>
    public int StateCount => _isReturn.Count;

    public int NewState()
    {
        if (_isReturn.Count >= _maxStates)
        {
            throw new SchemaException(CurrentPointer, $"the schema needs more than {_maxStates} automaton states (GrammarLimits.MaxStates); simplify it or lower the counts (maxItems, enum sizes, pattern repetitions).");
        }

        _edges.Add(null);
        _eps.Add(null);
        _callRule.Add(-1);
        _callReturn.Add(-1);
        _isReturn.Add(false);
        return _isReturn.Count - 1;
    }

    public int NewRule()
    {
        int start = NewState();
        int end = NewState();
        _isReturn[end] = true;
        _ruleStart.Add(start);
        _ruleEnd.Add(end);
        return _ruleStart.Count - 1;
    }

    /// <summary>Makes <paramref name="body"/> the content of rule <paramref name="rule"/>.</summary>
    public void DefineRule(int rule, Fragment body)
    {
        Epsilon(_ruleStart[rule], body.Start);
        Epsilon(body.End, _ruleEnd[rule]);
    }

    /// <summary>Declares <paramref name="state"/> the start of a string character that takes every plain character to one state (<see cref="StringRole.CharStart"/>).</summary>
    public void MarkCharStart(int state) => _charStarts.Add(state);

    /// <summary>
    /// Makes the states [<paramref name="first"/>, <paramref name="end"/>) one counted string loop (<see cref="CountedLoops"/>):
    /// <paramref name="first"/> starts each character and closes the string with its one edge out, and configurations
    /// count the characters started, between <paramref name="min"/> and <paramref name="max"/> (-1: unbounded).
    /// </summary>
    public void CountLoop(int first, int end, int min, int max) => _loops.Add((first, end, min, max));

    public void Epsilon(int from, int to) => (_eps[from] ??= []).Add(to);

    public void Edge(int from, byte lo, byte hi, int to) => (_edges[from] ??= []).Add((lo, hi, to));

    public Fragment Empty()
    {
        int s = NewState();
        int e = NewState();
        Epsilon(s, e);
        return new Fragment(s, e);
    }

    /// <summary>A fragment that accepts nothing (its end is unreachable).</summary>
    public Fragment Nothing() => new(NewState(), NewState());

    public Fragment Literal(ReadOnlySpan<byte> bytes)
    {
        int s = NewState();
        int cur = s;
        foreach (byte b in bytes)
        {
            int next = NewState();
            Edge(cur, b, b, next);
            cur = next;
        }

        return new Fragment(s, cur);
    }

    public Fragment Literal(string ascii) => Literal(System.Text.Encoding.UTF8.GetBytes(ascii));

    /// <summary>One byte from the given inclusive ranges.</summary>
    public Fragment Class(ReadOnlySpan<(byte Lo, byte Hi)> ranges)
    {
        int s = NewState();
        int e = NewState();
        foreach ((byte lo, byte hi) in ranges)
        {
            Edge(s, lo, hi, e);
        }

        return new Fragment(s, e);
    }

    public Fragment Range(byte lo, byte hi) => Class([(lo, hi)]);

    public Fragment Call(int rule)
    {
        int s = NewState();
        int e = NewState();
        _callRule[s] = rule;
        _callReturn[s] = e;
        return new Fragment(s, e);
    }

    public Fragment Seq(params ReadOnlySpan<Fragment> parts)
    {
        if (parts.Length == 0)
        {
            return Empty();
        }

        for (int i = 1; i < parts.Length; i++)
        {
            Epsilon(parts[i - 1].End, parts[i].Start);
        }

        return new Fragment(parts[0].Start, parts[^1].End);
    }

    public Fragment Alt(IReadOnlyList<Fragment> parts)
    {
        int s = NewState();
        int e = NewState();
        foreach (Fragment p in parts)
        {
            Epsilon(s, p.Start);
            Epsilon(p.End, e);
        }

        return new Fragment(s, e);
    }

    public Fragment Optional(Fragment f)
    {
        Epsilon(f.Start, f.End);
        return f;
    }

    public Fragment Star(Fragment f)
    {
        int s = NewState();
        int e = NewState();
        Epsilon(s, f.Start);
        Epsilon(s, e);
        Epsilon(f.End, s);
        return new Fragment(s, e);
    }

    /// <summary><paramref name="make"/> repeated between <paramref name="min"/> and <paramref name="max"/> times (max -1: unbounded), unrolled so each copy is its own states.</summary>
    public Fragment Repeat(Func<Fragment> make, int min, int max)
    {
        var parts = new List<Fragment>();
        for (int i = 0; i < min; i++)
        {
            parts.Add(make());
        }

        if (max < 0)
        {
            parts.Add(Star(make()));
        }
        else
        {
            // Nested optionals (a(b(c)?)?)? keep the NFA linear in max - min.
            int tailEnd = NewState();
            int cur = NewState();
            int tailStart = cur;
            for (int i = min; i < max; i++)
            {
                Fragment f = make();
                Epsilon(cur, f.Start);
                Epsilon(cur, tailEnd);
                cur = f.End;
            }

            Epsilon(cur, tailEnd);
            parts.Add(new Fragment(tailStart, tailEnd));
        }

        return Seq([.. parts]);
    }

    public Automaton Build(int rootRule, int maxDepth, int maxClosureEntries)
    {
        int n = _isReturn.Count;
        var edgeStarts = new int[n + 1];
        var lo = new List<byte>();
        var hi = new List<byte>();
        var target = new List<int>();
        for (int s = 0; s < n; s++)
        {
            edgeStarts[s] = lo.Count;
            if (_edges[s] is { } list)
            {
                foreach ((byte l, byte h, int t) in list)
                {
                    lo.Add(l);
                    hi.Add(h);
                    target.Add(t);
                }
            }
        }

        edgeStarts[n] = lo.Count;
        int[][] closure = BuildClosures(n, maxClosureEntries);
        int[] callRule = [.. _callRule];
        int[] callReturn = [.. _callReturn];
        bool[] isReturn = [.. _isReturn];
        int[] ruleStart = [.. _ruleStart];
        int[] minDepth = ComputeMinDepth(n, edgeStarts, [.. target], callRule, callReturn, isReturn, closure, ruleStart);
        if (minDepth[ruleStart[rootRule]] >= Automaton.Unreachable)
        {
            throw new SchemaException("", "the schema accepts no JSON value (a contradiction such as minLength > maxLength, an empty enum, or recursion with no base case).");
        }

        if (minDepth[ruleStart[rootRule]] > maxDepth)
        {
            throw new SchemaException("", $"every value of the schema nests $ref recursion deeper than GrammarLimits.MaxDepth ({maxDepth}).");
        }

        CountedLoops loops = CountedLoops.Build(n, _loops, s => _edges[s] ?? [], s => _eps[s] ?? []);
        return new Automaton(edgeStarts, [.. lo], [.. hi], [.. target], callRule, callReturn, isReturn, closure, ruleStart, minDepth, maxDepth, StringRoles(n), loops);
    }

    private StringRole[] StringRoles(int n)
    {
        var roles = new StringRole[n];
        for (int s = 0; s < n; s++)
        {
            if (_charStarts.Contains(s))
            {
                roles[s] = StringRole.CharStart;
            }
            else if (_edges[s] is { } list && list.Exists(edge => AcceptsPlainFirstByte(edge.Lo, edge.Hi)))
            {
                roles[s] = StringRole.Other;
            }
        }

        return roles;
    }

    /// <summary>Whether a byte in [lo, hi] can start a plain token: printable ASCII but quote and backslash, or a UTF-8 lead byte.</summary>
    private static bool AcceptsPlainFirstByte(byte lo, byte hi)
    {
        for (int b = lo; b <= hi; b++)
        {
            if ((b >= 0x20 && b <= 0x7F && b != '"' && b != '\\') || (b >= 0xC2 && b <= 0xF4))
            {
                return true;
            }
        }

        return false;
    }

    private bool IsKernel(int s) => _edges[s] != null || _callRule[s] >= 0 || _isReturn[s];

    private int[][] BuildClosures(int n, int maxEntries)
    {
        var closure = new int[n][];
        var mark = new int[n];
        var stack = new Stack<int>();
        var result = new List<int>();
        long total = 0;
        for (int s = 0; s < n; s++)
        {
            result.Clear();
            stack.Push(s);
            mark[s] = s + 1;
            while (stack.Count > 0)
            {
                int t = stack.Pop();
                if (IsKernel(t))
                {
                    result.Add(t);
                }

                if (_eps[t] is { } next)
                {
                    foreach (int u in next)
                    {
                        if (mark[u] != s + 1)
                        {
                            mark[u] = s + 1;
                            stack.Push(u);
                        }
                    }
                }
            }

            result.Sort();
            closure[s] = [.. result];
            total += result.Count;
            if (total > maxEntries)
            {
                throw new SchemaException("", $"the schema's automaton is too branchy (more than {maxEntries} epsilon-closure entries, GrammarLimits.MaxStates * 8); reduce anyOf/enum alternatives.");
            }
        }

        return closure;
    }

    private static int[] ComputeMinDepth(int n, int[] edgeStarts, int[] target, int[] callRule, int[] callReturn, bool[] isReturn, int[][] closure, int[] ruleStart)
    {
        var h = new int[n];
        Array.Fill(h, Automaton.Unreachable);
        bool changed = true;
        while (changed)
        {
            changed = false;

            // Thompson fragments mostly point forward, so a backward sweep converges in few passes.
            for (int s = n - 1; s >= 0; s--)
            {
                int best = h[s];
                if (isReturn[s])
                {
                    best = 0;
                }

                for (int e = edgeStarts[s]; e < edgeStarts[s + 1]; e++)
                {
                    best = Math.Min(best, h[target[e]]);
                }

                if (callRule[s] >= 0)
                {
                    best = Math.Min(best, Math.Max(1 + h[ruleStart[callRule[s]]], h[callReturn[s]]));
                }

                foreach (int k in closure[s])
                {
                    best = Math.Min(best, h[k]);
                }

                if (best < h[s])
                {
                    h[s] = best;
                    changed = true;
                }
            }
        }

        return h;
    }
}
