using System.Text.Json;

namespace Qwen3.Net.Generation.Constraints;

/// <summary>A JSON Schema compiled against a vocabulary: creates per-generation <see cref="TokenMatcher"/>s and shares their token-mask cache.</summary>
/// <remarks>Thread-safe: matchers of one grammar may run on different threads.</remarks>
internal sealed class CompiledGrammar
{
    private readonly Dictionary<MaskKey, ulong[]> _cache = [];
    private readonly Lock _cacheLock = new();
    private readonly int _maxCachedMasks;

    private CompiledGrammar(Automaton automaton, TokenVocabulary vocabulary, GrammarLimits limits)
    {
        Automaton = automaton;
        Vocabulary = vocabulary;
        _maxCachedMasks = limits.MaxCachedMasks;
    }

    public Automaton Automaton { get; }

    public TokenVocabulary Vocabulary { get; }

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

    public TokenMatcher CreateMatcher() => new(this);

    internal bool TryGetCachedMask(MaskKey key, Span<ulong> mask)
    {
        lock (_cacheLock)
        {
            if (!_cache.TryGetValue(key, out ulong[]? cached))
            {
                return false;
            }

            cached.CopyTo(mask);
            return true;
        }
    }

    internal void CacheMask(MaskKey key, ReadOnlySpan<ulong> mask)
    {
        lock (_cacheLock)
        {
            // A full cache stops growing rather than evicting: the states that recur most were seen first.
            if (_cache.Count < _maxCachedMasks)
            {
                _cache.TryAdd(key, mask.ToArray());
            }
        }
    }
}

/// <summary>A matcher state written as integers (accepting flag, then each configuration's state and stack), keying the mask cache.</summary>
internal readonly struct MaskKey : IEquatable<MaskKey>
{
    private readonly int[] _values;
    private readonly int _hash;

    public MaskKey(ConfigSet set)
    {
        int length = 1;
        for (int i = 0; i < set.Count; i++)
        {
            length += 2 + (set.Stacks[i]?.Depth ?? 0);
        }

        _values = new int[length];
        _values[0] = set.Accepting ? 1 : 0;
        int at = 1;
        for (int i = 0; i < set.Count; i++)
        {
            _values[at++] = set.States[i];
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
    private readonly GrammarMatcher _matcher;
    private readonly ConfigSet[] _levels;
    private readonly int[] _cursor;

    internal TokenMatcher(CompiledGrammar grammar)
    {
        _grammar = grammar;
        _matcher = new GrammarMatcher(grammar.Automaton);
        int depth = grammar.Vocabulary.MaxTokenLength + 1;
        _levels = new ConfigSet[depth];
        for (int i = 0; i < depth; i++)
        {
            _levels[i] = new ConfigSet();
        }

        _cursor = new int[depth];
    }

    /// <summary>The output so far is a complete document (an end token is allowed).</summary>
    public bool IsAccepting => !IsTerminated && _matcher.IsAccepting;

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
            IsTerminated = _matcher.IsAccepting;
            return IsTerminated;
        }

        ReadOnlySpan<byte> bytes = _grammar.Vocabulary.TokenBytes(tokenId);
        return !bytes.IsEmpty && _matcher.AcceptBytes(bytes);
    }

    /// <summary>Consumes raw bytes (for tests and for text forced into the output); false and unchanged when they break the document.</summary>
    public bool AcceptBytes(ReadOnlySpan<byte> bytes) => !IsTerminated && _matcher.AcceptBytes(bytes);

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

        ConfigSet current = _matcher.Current;
        var key = new MaskKey(current);
        if (_grammar.TryGetCachedMask(key, mask))
        {
            return;
        }

        mask.Clear();
        if (current.Accepting)
        {
            foreach (int id in _grammar.Vocabulary.EndTokenIds)
            {
                mask[id >> 6] |= 1UL << id;
            }
        }

        if (current.Count > 0)
        {
            Walk(current, mask);
        }

        _grammar.CacheMask(key, mask);
    }

    /// <summary>Depth-first walk of the vocabulary trie, stepping the automaton one byte per trie edge.</summary>
    private void Walk(ConfigSet start, Span<ulong> mask)
    {
        TokenVocabulary v = _grammar.Vocabulary;
        AutomatonStepper stepper = _matcher.Stepper;
        _levels[0].CopyFrom(start);
        int depth = 0;
        _cursor[0] = v.FirstChild[0];
        while (depth >= 0)
        {
            int child = _cursor[depth];
            if (child < 0)
            {
                depth--;
                continue;
            }

            _cursor[depth] = v.NextSibling[child];
            ConfigSet next = _levels[depth + 1];
            stepper.Step(_levels[depth], v.NodeByte[child], next);
            if (next.IsDead)
            {
                continue;
            }

            for (int t = v.NodeTokenStarts[child]; t < v.NodeTokenStarts[child + 1]; t++)
            {
                int id = v.NodeTokens[t];
                mask[id >> 6] |= 1UL << id;
            }

            if (next.Count > 0 && v.FirstChild[child] >= 0)
            {
                depth++;
                _cursor[depth] = v.FirstChild[child];
            }
        }
    }
}
