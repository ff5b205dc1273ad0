namespace Qwen3.Net.Generation.Constraints;

/// <summary>Where a byte stands inside a JSON string's content: at the start of a character, or inside an escape or a UTF-8 sequence.</summary>
internal enum StringLex : byte
{
    /// <summary>Not a position of a counted string (or one whose edges do not follow the lexer).</summary>
    None,

    /// <summary>Before a character or the closing quote.</summary>
    CharStart,

    /// <summary>After a backslash.</summary>
    Escape,

    /// <summary>After <c>\u</c>: four hex digits left.</summary>
    Hex4,

    Hex3,

    Hex2,

    Hex1,

    /// <summary>After a 4-byte lead: three continuation bytes left.</summary>
    Cont3,

    Cont2,

    Cont1,
}

/// <summary>The JSON string lexer that counts characters as JSON Schema's <c>minLength</c>/<c>maxLength</c> do (an escape or a UTF-8 sequence is one).</summary>
/// <remarks>It only tracks positions; validity is the automaton's business. The automaton's counted loops are checked against it when built.</remarks>
internal static class StringLexer
{
    public const int LexCount = (int)StringLex.Cont1 + 1;

    /// <summary>The position after byte <paramref name="b"/> at <paramref name="lex"/> (never called with the closing quote at a character start).</summary>
    public static StringLex Next(StringLex lex, byte b) => lex switch
    {
        StringLex.CharStart => b switch
        {
            (byte)'\\' => StringLex.Escape,
            >= 0xC0 and <= 0xDF => StringLex.Cont1,
            >= 0xE0 and <= 0xEF => StringLex.Cont2,
            >= 0xF0 and <= 0xF7 => StringLex.Cont3,
            _ => StringLex.CharStart,
        },
        StringLex.Escape => b == 'u' ? StringLex.Hex4 : StringLex.CharStart,
        StringLex.Hex4 => StringLex.Hex3,
        StringLex.Hex3 => StringLex.Hex2,
        StringLex.Hex2 => StringLex.Hex1,
        StringLex.Cont3 => StringLex.Cont2,
        StringLex.Cont2 => StringLex.Cont1,
        _ => StringLex.CharStart,
    };

    /// <summary>How many characters <paramref name="bytes"/> start inside the string from <paramref name="lex"/>, up to a closing quote, and whether they close it.</summary>
    public static int Count(ReadOnlySpan<byte> bytes, StringLex lex, out bool closes)
    {
        int chars = 0;
        foreach (byte b in bytes)
        {
            if (lex == StringLex.CharStart)
            {
                if (b == '"')
                {
                    closes = true;
                    return chars;
                }

                chars++;
            }

            lex = Next(lex, b);
        }

        closes = false;
        return chars;
    }
}

/// <summary>
/// The counted string loops of an automaton: one <see cref="JsonLexicon.StringChar"/> fragment per bounded string whose
/// start state loops back to itself, with the number of characters started so far kept in each configuration instead
/// of one fragment per position (see <see cref="AutomatonStepper"/>).
/// </summary>
internal sealed class CountedLoops
{
    public CountedLoops(int[] loopOf, int[] start, int[] min, int[] max, StringLex[] lex)
    {
        LoopOf = loopOf;
        Start = start;
        Min = min;
        Max = max;
        Lex = lex;
    }

    /// <summary>Per automaton state, the loop it belongs to, or -1.</summary>
    public int[] LoopOf { get; }

    /// <summary>Per loop, its character-start state: every edge from it into the loop starts a character, its edge out is the closing quote.</summary>
    public int[] Start { get; }

    /// <summary>Per loop, <c>minLength</c>.</summary>
    public int[] Min { get; }

    /// <summary>Per loop, <c>maxLength</c>, or -1 when unbounded.</summary>
    public int[] Max { get; }

    /// <summary>Per automaton state, its lexer position when it belongs to a loop whose edges follow <see cref="StringLexer"/>; <see cref="StringLex.None"/> otherwise.</summary>
    public StringLex[] Lex { get; }

    /// <summary>
    /// The count after an edge out of loop <paramref name="loop"/>'s start state from a configuration with
    /// <paramref name="count"/> characters started: starting one more needs <c>count &lt; max</c>, the closing quote
    /// needs <c>count ≥ min</c>. Without a maximum the count stops at <c>min</c>, so the positions past it are one state.
    /// </summary>
    public bool TryStep(int loop, int count, bool startsCharacter, out int next)
    {
        if (!startsCharacter)
        {
            next = 0;
            return count >= Min[loop];
        }

        next = Max[loop] >= 0 || count < Min[loop] ? count + 1 : count;
        return Max[loop] < 0 || count < Max[loop];
    }

    /// <summary>Whether <paramref name="state"/> is a loop's start whose <paramref name="count"/> has reached <c>maxLength</c>, so it only takes the closing quote.</summary>
    public bool IsFull(int state, int count) => LoopOf[state] is >= 0 and int loop && Start[loop] == state && Max[loop] >= 0 && count >= Max[loop];

    /// <summary>Marks the states of each loop with their lexer position, following the edges from the start state; a loop whose edges disagree with the lexer gets none.</summary>
    public static CountedLoops Build(int stateCount, IReadOnlyList<(int First, int End, int Min, int Max)> loops, Func<int, IEnumerable<(byte Lo, byte Hi, int Target)>> edges, Func<int, IEnumerable<int>> epsilons)
    {
        var loopOf = new int[stateCount];
        Array.Fill(loopOf, -1);
        var lex = new StringLex[stateCount];
        for (int loop = 0; loop < loops.Count; loop++)
        {
            (int first, int end, _, _) = loops[loop];
            loopOf.AsSpan(first, end - first).Fill(loop);
        }

        for (int loop = 0; loop < loops.Count; loop++)
        {
            (int first, int end, _, _) = loops[loop];
            if (!Label(loop, first, loopOf, lex, edges, epsilons))
            {
                lex.AsSpan(first, end - first).Clear();
            }
        }

        return new CountedLoops(
            loopOf, [.. loops.Select(l => l.First)], [.. loops.Select(l => l.Min)], [.. loops.Select(l => l.Max)], lex);
    }

    private static bool Label(int loop, int start, int[] loopOf, StringLex[] lex, Func<int, IEnumerable<(byte Lo, byte Hi, int Target)>> edges, Func<int, IEnumerable<int>> epsilons)
    {
        bool Assign(int state, StringLex value, Stack<int> pending)
        {
            if (loopOf[state] != loop)
            {
                return false;
            }

            if (lex[state] == StringLex.None)
            {
                lex[state] = value;
                pending.Push(state);
            }

            return lex[state] == value;
        }

        var pending = new Stack<int>();
        if (!Assign(start, StringLex.CharStart, pending))
        {
            return false;
        }

        while (pending.TryPop(out int state))
        {
            foreach ((byte lo, byte hi, int target) in edges(state))
            {
                if (loopOf[target] != loop)
                {
                    // Only the closing quote leaves the loop, and only from its start.
                    if (state != start || lo != '"' || hi != '"')
                    {
                        return false;
                    }

                    continue;
                }

                for (int b = lo; b <= hi; b++)
                {
                    if ((lex[state] == StringLex.CharStart && (b == '"' || state != start)) || !Assign(target, StringLexer.Next(lex[state], (byte)b), pending))
                    {
                        return false;
                    }
                }
            }

            foreach (int target in epsilons(state))
            {
                if (!Assign(target, lex[state], pending))
                {
                    return false;
                }
            }
        }

        return true;
    }
}

/// <summary>
/// A DFA state inside a counted string whose mask follows from the mask of <see cref="Reference"/>: the same
/// configurations counted at the loop's <c>minLength</c>, where no token's count is refused but those that would pass
/// <c>maxLength</c> from there.
/// </summary>
/// <remarks>
/// A token is allowed here exactly when it is allowed at the reference, starts at most <see cref="Room"/> characters,
/// and, when it closes the string, at least <see cref="Need"/>: the counts only decide whether a character may start
/// and whether the quote may close, and what follows the quote does not depend on them.
/// </remarks>
internal sealed class CountedPosition(DfaState reference, int room, int need, StringLex lex)
{
    /// <summary><see cref="Room"/> of a string without <c>maxLength</c>.</summary>
    public const int Unbounded = int.MaxValue;

    public DfaState Reference { get; } = reference;

    /// <summary>Characters a token may still start.</summary>
    public int Room { get; } = room;

    /// <summary>Characters a token that closes the string must start first (zero or less: any number).</summary>
    public int Need { get; } = need;

    /// <summary>The lexer position of every configuration, which decides how a token's bytes are counted.</summary>
    public StringLex Lex { get; } = lex;

    /// <summary>
    /// Whether the reference's mask refuses no token this position allows. Past <c>minLength</c> the reference has more
    /// room; below it, it has less, so the reference must have room for every token (<paramref name="maxCount"/>).
    /// </summary>
    public bool Derivable(int maxCount) => Need <= 0 || Room == Unbounded || maxCount <= Room - Need;
}

/// <summary>Per token, how many characters it starts inside a string from one lexer position and whether it closes the string, as bitmaps.</summary>
internal sealed class StringCountTable
{
    private readonly TokenCountTable _counts;
    private readonly int[] _closers;
    private readonly int[] _closerCounts;

    public StringCountTable(byte[][] tokenBytes, StringLex lex, int maskWords)
    {
        var counts = new int[tokenBytes.Length];
        var closers = new List<int>();
        for (int id = 0; id < tokenBytes.Length; id++)
        {
            counts[id] = StringLexer.Count(tokenBytes[id], lex, out bool closes);
            if (closes)
            {
                closers.Add(id);
            }
        }

        closers.Sort((x, y) => counts[x].CompareTo(counts[y]));
        _counts = new TokenCountTable(counts, maskWords);
        _closers = [.. closers];
        _closerCounts = [.. closers.Select(id => counts[id])];
    }

    /// <summary>The most characters any token starts.</summary>
    public int MaxCount => _counts.MaxCount;

    /// <summary>Clears the tokens that start more than <paramref name="room"/> characters and those that close the string after fewer than <paramref name="need"/>.</summary>
    public void Restrict(Span<ulong> mask, int room, int need)
    {
        _counts.KeepAtMost(mask, room);
        for (int i = 0; i < _closers.Length && _closerCounts[i] < need; i++)
        {
            int id = _closers[i];
            mask[id >> 6] &= ~(1UL << id);
        }
    }
}
