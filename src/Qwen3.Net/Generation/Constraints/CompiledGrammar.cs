using System.Text.Json;

namespace Qwen3.Net.Generation.Constraints;

/// <summary>A JSON Schema compiled against a vocabulary: creates per-generation <see cref="TokenMatcher"/>s and shares their token-mask cache.</summary>
/// <remarks>Thread-safe: matchers of one grammar may run on different threads.</remarks>
internal sealed class CompiledGrammar
{
    private readonly int _maxCachedMasks;
    private int _cachedMasks;

    private CompiledGrammar(Automaton automaton, TokenVocabulary vocabulary, GrammarLimits limits)
    {
        Automaton = automaton;
        Vocabulary = vocabulary;
        Dfa = new LazyDfa(automaton, limits.MaxDfaStates);
        _maxCachedMasks = limits.MaxCachedMasks;
    }

    public Automaton Automaton { get; }

    public TokenVocabulary Vocabulary { get; }

    public LazyDfa Dfa { get; }

    /// <summary>Compiles <paramref name="schema"/> (a JSON Schema document) for <paramref name="vocabulary"/>.</summary>
    /// <exception cref="SchemaException">The schema is invalid, unsupported, unsatisfiable, or exceeds <paramref name="limits"/>.</exception>
    public static CompiledGrammar FromJsonSchema(JsonElement schema, TokenVocabulary vocabulary, GrammarLimits? limits = null)
    {
        limits ??= GrammarLimits.Default;
        return new CompiledGrammar(JsonSchemaCompiler.Compile(schema, limits), vocabulary, limits);
    }

    /// <summary>Any JSON object, for <c>response_format: {"type":"json_object"}</c>.</summary>
    public static CompiledGrammar AnyJsonObject(TokenVocabulary vocabulary, GrammarLimits? limits = null)
    {
        limits ??= GrammarLimits.Default;
        return new CompiledGrammar(JsonSchemaCompiler.CompileAnyObject(limits), vocabulary, limits);
    }

    /// <summary>An automaton compiled elsewhere (a tool-call grammar), for <paramref name="vocabulary"/>.</summary>
    public static CompiledGrammar FromAutomaton(Automaton automaton, TokenVocabulary vocabulary, GrammarLimits? limits = null) =>
        new(automaton, vocabulary, limits ?? GrammarLimits.Default);

    public TokenMatcher CreateMatcher() => new(this);

    /// <summary>Keeps <paramref name="mask"/> on <paramref name="state"/> while the cache has room.</summary>
    internal void CacheMask(DfaState state, ReadOnlySpan<ulong> mask)
    {
        // A full cache stops growing rather than evicting: the states that recur most were seen first.
        if (state.Interned && Volatile.Read(ref state.Mask) == null && Interlocked.Increment(ref _cachedMasks) <= _maxCachedMasks)
        {
            Volatile.Write(ref state.Mask, mask.ToArray());
        }
    }

    /// <summary>Gives <paramref name="state"/> the cached mask of another state, equal to its own; it costs no room in the cache.</summary>
    internal static void ShareMask(DfaState state, ulong[] mask)
    {
        if (state.Interned)
        {
            Volatile.Write(ref state.Mask, mask);
        }
    }
}

/// <summary>A matcher state written as integers (accepting flag, then each configuration's state, count and stack), keying the mask cache.</summary>
internal readonly struct MaskKey : IEquatable<MaskKey>
{
    private readonly int[] _values;
    private readonly int _hash;

    public MaskKey(ConfigSet set)
    {
        int length = 1;
        for (int i = 0; i < set.Count; i++)
        {
            length += 3 + (set.Stacks[i]?.Depth ?? 0);
        }

        _values = new int[length];
        _values[0] = set.Accepting ? 1 : 0;
        int at = 1;
        for (int i = 0; i < set.Count; i++)
        {
            _values[at++] = set.States[i];
            _values[at++] = set.Counts[i];
            for (StackFrame? f = set.Stacks[i]; f != null; f = f.Parent)
            {
                _values[at++] = f.ReturnState;
            }

            _values[at++] = -1;
        }

        var hash = new HashCode();
        hash.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_values.AsSpan()));
        _hash = hash.ToHashCode();
    }

    public bool Equals(MaskKey other) => _values.AsSpan().SequenceEqual(other._values);

    public override bool Equals(object? obj) => obj is MaskKey other && Equals(other);

    public override int GetHashCode() => _hash;
}

/// <summary>Constrains one generation: computes which tokens keep the output valid and consumes the chosen ones.</summary>
/// <remarks>Not thread-safe. Special tokens are never allowed, except the end tokens once the document is complete.</remarks>
internal sealed class TokenMatcher
{
    private readonly CompiledGrammar _grammar;
    private readonly LazyDfa _dfa;
    private readonly DfaState[] _levels;
    private readonly int[] _cursor;
    private readonly bool[] _inDecided;
    private DfaState _current;

    internal TokenMatcher(CompiledGrammar grammar)
    {
        _grammar = grammar;
        _dfa = grammar.Dfa;
        _current = _dfa.Start;
        int depth = grammar.Vocabulary.MaxTokenLength + 1;
        _levels = new DfaState[depth];
        _cursor = new int[depth];
        _inDecided = new bool[depth];
    }

    /// <summary>The output so far is a complete document (an end token is allowed).</summary>
    public bool IsAccepting => !IsTerminated && _current.Accepting;

    /// <summary>The document is complete and no byte may follow: only an end token is allowed.</summary>
    public bool IsComplete => !IsTerminated && _current.Accepting && _current.Configs.Count == 0;

    /// <summary>An end token was accepted; nothing more is allowed.</summary>
    public bool IsTerminated { get; private set; }

    /// <summary>Length of the mask <see cref="FillMask"/> writes, in 64-bit words.</summary>
    public int MaskWords => _grammar.Vocabulary.MaskWords;

    /// <summary>Consumes token <paramref name="tokenId"/> if allowed; otherwise returns false and changes nothing.</summary>
    public bool AcceptToken(int tokenId)
    {
        if (IsTerminated)
        {
            return false;
        }

        if (_grammar.Vocabulary.IsEndToken(tokenId))
        {
            IsTerminated = _current.Accepting;
            return IsTerminated;
        }

        ReadOnlySpan<byte> bytes = _grammar.Vocabulary.TokenBytes(tokenId);
        return !bytes.IsEmpty && AcceptBytes(bytes);
    }

    /// <summary>Consumes raw bytes (for text forced into the output); false and unchanged when they break the document.</summary>
    public bool AcceptBytes(ReadOnlySpan<byte> bytes)
    {
        if (IsTerminated)
        {
            return false;
        }

        DfaState state = _current;
        foreach (byte b in bytes)
        {
            state = _dfa.Step(state, b);
            if (state.IsDead)
            {
                return false;
            }
        }

        _current = state;
        return true;
    }

    /// <summary>Sets bit <c>id</c> of <paramref name="mask"/> (word id/64, bit id%64) for exactly the tokens <see cref="AcceptToken"/> would accept now.</summary>
    public void FillMask(Span<ulong> mask)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mask.Length, MaskWords, nameof(mask));
        mask = mask[..MaskWords];
        if (IsTerminated)
        {
            mask.Clear();
            return;
        }

        Fill(_current, mask);
    }

    private void Fill(DfaState state, Span<ulong> mask)
    {
        if (Volatile.Read(ref state.Mask) is { } cached)
        {
            cached.CopyTo(mask);
            return;
        }

        TokenVocabulary vocabulary = _grammar.Vocabulary;
        if (_dfa.CountedPositionOf(state) is { } position && vocabulary.StringCounts(position.Lex) is { } counts && position.Derivable(counts.MaxCount))
        {
            // A position of a counted string: its reference's mask (walked once per string) minus the tokens the count refuses here.
            Fill(position.Reference, mask);
            if (position.Room >= counts.MaxCount && position.Need <= 0 && Volatile.Read(ref position.Reference.Mask) is { } shared)
            {
                CompiledGrammar.ShareMask(state, shared);
                return;
            }

            counts.Restrict(mask, position.Room, position.Need);
            _grammar.CacheMask(state, mask);
            return;
        }

        int reach = state.Configs.Count > 0 ? _dfa.StringReach(state, vocabulary.MaxPlainChars) : LazyDfa.NotInString;
        if (reach >= 0)
        {
            // Inside a string, plain tokens are decided by their length alone; only the others need the walk.
            vocabulary.FillPlain(mask, reach);
            Walk(vocabulary.ContextTrie, state, mask);
        }
        else if (state.Configs.Count > 0 && state.Interned
            && _dfa.FindClassRun(state) is { } run && vocabulary.ClassTable(run) is { } table && run.Decides(table.MaxCount))
        {
            // The tokens spelled only with the state's class are decided by their length alone; the walk skips them.
            table.Fill(mask, run.Reach);
            Walk(vocabulary.Trie, state, mask, run);
        }
        else
        {
            mask.Clear();
            if (state.Configs.Count > 0)
            {
                Walk(vocabulary.Trie, state, mask);
            }
        }

        if (state.Accepting)
        {
            foreach (int id in vocabulary.EndTokenIds)
            {
                mask[id >> 6] |= 1UL << id;
            }
        }

        _grammar.CacheMask(state, mask);
    }

    /// <summary>Subtrees with fewer nodes than this are walked even when a class run could decide them: computing the run would cost more.</summary>
    private const int ClassRunMinNodes = 64;

    /// <summary>Depth-first walk of a token trie, stepping the DFA one byte per trie edge; sets the bits of the tokens it accepts.</summary>
    /// <remarks>
    /// A subtree spelled only with a state's class run (<see cref="LazyDfa.FindClassRun"/>) is decided by token length
    /// without stepping. Tokens spelled only with <paramref name="decided"/>'s class are already in the mask and skipped.
    /// </remarks>
    private void Walk(TokenTrie trie, DfaState start, Span<ulong> mask, ClassRun? decided = null)
    {
        byte[] nodeByte = trie.NodeByte;
        int[] firstChild = trie.FirstChild;
        int[] nextSibling = trie.NextSibling;
        int[] tokenStarts = trie.NodeTokenStarts;
        int[] tokens = trie.NodeTokens;
        int[] subtreeEnd = trie.SubtreeEnd;
        ulong[] subtreeAscii = trie.SubtreeAscii;
        _levels[0] = start;
        _inDecided[0] = decided != null;
        int depth = 0;
        _cursor[0] = firstChild[0];
        while (depth >= 0)
        {
            int child = _cursor[depth];
            if (child < 0)
            {
                depth--;
                continue;
            }

            _cursor[depth] = nextSibling[child];
            ulong low = subtreeAscii[2 * child];
            ulong high = subtreeAscii[(2 * child) + 1];
            if (_inDecided[depth] && (low & ~decided!.Low) == 0 && (high & ~decided.High) == 0)
            {
                continue;
            }

            DfaState level = _levels[depth];
            if (level.Run is { } run && (low & ~run.Low) == 0 && (high & ~run.High) == 0 && run.Decides(trie.SubtreeMaxDepth[child] - depth))
            {
                AllowByLength(trie, child, depth, run.Reach, mask);
                continue;
            }

            DfaState next = _dfa.Step(level, nodeByte[child]);
            if (next.IsDead)
            {
                continue;
            }

            for (int t = tokenStarts[child]; t < tokenStarts[child + 1]; t++)
            {
                int id = tokens[t];
                mask[id >> 6] |= 1UL << id;
            }

            if (next.Configs.Count > 0 && firstChild[child] >= 0)
            {
                if (next.Interned && next.Run == null && subtreeEnd[child] - child >= ClassRunMinNodes)
                {
                    _dfa.FindClassRun(next);
                }

                _inDecided[depth + 1] = _inDecided[depth] && decided!.Contains(nodeByte[child]);
                depth++;
                _levels[depth] = next;
                _cursor[depth] = firstChild[child];
            }
        }
    }

    /// <summary>Sets the bits of the tokens under <paramref name="node"/> that have at most <paramref name="reach"/> bytes past the first <paramref name="depth"/>.</summary>
    private static void AllowByLength(TokenTrie trie, int node, int depth, int reach, Span<ulong> mask)
    {
        int[] tokenStarts = trie.NodeTokenStarts;
        int[] tokens = trie.NodeTokens;
        int[] subtreeEnd = trie.SubtreeEnd;
        int end = subtreeEnd[node];
        if (trie.SubtreeMaxDepth[node] - depth <= reach)
        {
            for (int t = tokenStarts[node]; t < tokenStarts[end]; t++)
            {
                int id = tokens[t];
                mask[id >> 6] |= 1UL << id;
            }

            return;
        }

        int[] nodeDepth = trie.NodeDepth;
        int n = node;
        while (n < end)
        {
            if (nodeDepth[n] - depth > reach)
            {
                // Preorder numbering: every node of this subtree is deeper still.
                n = subtreeEnd[n];
                continue;
            }

            for (int t = tokenStarts[n]; t < tokenStarts[n + 1]; t++)
            {
                int id = tokens[t];
                mask[id >> 6] |= 1UL << id;
            }

            n++;
        }
    }
}
