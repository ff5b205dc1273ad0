using System.Text;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;
using Qwen3.Net.Tests.Tokenization;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>The real Qwen3 vocabulary for mask tests: tokens looked up by their bytes, and masks computed the slow, exact way to compare with.</summary>
internal static class MaskTestVocabulary
{
    private static readonly Lazy<TokenVocabulary> Shared = new(() => TokenVocabulary.FromTokenizer(SharedTokenizer.Instance));

    private static readonly Lazy<Dictionary<string, int>> Ids = new(() =>
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            ReadOnlySpan<byte> bytes = Vocabulary.TokenBytes(id);
            if (!bytes.IsEmpty)
            {
                map.TryAdd(Encoding.Latin1.GetString(bytes), id);
            }
        }

        return map;
    });

    public static TokenVocabulary Vocabulary => Shared.Value;

    /// <summary>The id of the token spelled exactly by <paramref name="bytes"/>.</summary>
    public static int Token(params byte[] bytes) => Ids.Value[Encoding.Latin1.GetString(bytes)];

    /// <summary>The id of the token spelled exactly by the UTF-8 of <paramref name="text"/>.</summary>
    public static int Token(string text) => Token(Encoding.UTF8.GetBytes(text));

    public static bool Allowed(ulong[] mask, int id) => (mask[id >> 6] & (1UL << id)) != 0;

    public static CompiledGrammar Grammar(string schema) => CompiledGrammar.FromJsonSchema(JsonDocument.Parse(schema).RootElement, Vocabulary);

    /// <summary>The DFA state after the bytes of <paramref name="prefix"/>, which must keep the document valid.</summary>
    public static DfaState After(CompiledGrammar grammar, string prefix)
    {
        DfaState state = grammar.Dfa.Start;
        foreach (byte b in Encoding.UTF8.GetBytes(prefix))
        {
            state = grammar.Dfa.Step(state, b);
        }

        state.IsDead.Should().BeFalse($"'{prefix}' is a valid prefix");
        return state;
    }

    /// <summary>
    /// Random walks of up to <paramref name="steps"/> tokens where every mask is compared bit for bit with
    /// <see cref="ReferenceMask"/>, until <paramref name="masks"/> masks were compared or after <paramref name="walks"/>
    /// walks; returns how many masks were compared. With <paramref name="freshGrammars"/> each walk compiles its own
    /// grammar, so no state's mask comes from the cache of an earlier walk.
    /// </summary>
    public static int CompareWithReference(Func<CompiledGrammar> compile, int masks, int walks, int steps, bool freshGrammars)
    {
        CompiledGrammar grammar = compile();
        var mask = new ulong[Vocabulary.MaskWords];
        int masksCompared = 0;
        for (int seed = 0; masksCompared < masks && seed < walks; seed++)
        {
            grammar = freshGrammars && seed > 0 ? compile() : grammar;
            CompiledGrammar reference = compile();
            DfaState referenceState = reference.Dfa.Start;
            var random = new Random(seed);
            TokenMatcher matcher = grammar.CreateMatcher();
            var output = new List<byte>();
            for (int step = 0; step < steps && !matcher.IsTerminated; step++)
            {
                matcher.FillMask(mask);
                ulong[] expected = ReferenceMask(reference, referenceState);
                for (int word = 0; word < mask.Length; word++)
                {
                    if (mask[word] != expected[word])
                    {
                        int id = (word * 64) + System.Numerics.BitOperations.TrailingZeroCount(mask[word] ^ expected[word]);
                        Allowed(mask, id).Should().Be(Allowed(expected, id), $"token {id} '{Encoding.UTF8.GetString(Vocabulary.TokenBytes(id))}' after '{Encoding.UTF8.GetString(output.ToArray())}'");
                    }
                }

                masksCompared++;
                int pick = Pick(mask, random, step > steps / 2);
                matcher.AcceptToken(pick).Should().BeTrue();
                if (Vocabulary.IsEndToken(pick))
                {
                    break;
                }

                foreach (byte b in Vocabulary.TokenBytes(pick))
                {
                    referenceState = reference.Dfa.Step(referenceState, b);
                }

                output.AddRange(Vocabulary.TokenBytes(pick).ToArray());
            }
        }

        return masksCompared;
    }

    /// <summary>The mask of <paramref name="state"/> found by stepping each token's bytes one by one through the DFA (no trie, no tables, no cached mask).</summary>
    public static ulong[] ReferenceMask(CompiledGrammar reference, DfaState state)
    {
        var mask = new ulong[Vocabulary.MaskWords];
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            ReadOnlySpan<byte> bytes = Vocabulary.TokenBytes(id);
            bool allowed;
            if (Vocabulary.IsEndToken(id))
            {
                allowed = state.Accepting;
            }
            else
            {
                DfaState s = state;
                foreach (byte b in bytes)
                {
                    s = reference.Dfa.Step(s, b);
                    if (s.IsDead)
                    {
                        break;
                    }
                }

                allowed = !bytes.IsEmpty && !s.IsDead;
            }

            if (allowed)
            {
                mask[id >> 6] |= 1UL << id;
            }
        }

        return mask;
    }

    /// <summary>Often a token that is not plain (quotes, escapes, split characters), so the walked part of a string mask is exercised; past the budget, toward the end.</summary>
    private static int Pick(ulong[] mask, Random random, bool finish)
    {
        var allowed = new List<int>();
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            if (Allowed(mask, id))
            {
                allowed.Add(id);
            }
        }

        allowed.Should().NotBeEmpty();
        List<int> preferred = finish
            ? allowed.FindAll(id => Vocabulary.IsEndToken(id) || Vocabulary.TokenBytes(id) is [(byte)'"' or (byte)']' or (byte)'}', ..])
            : random.Next(3) == 0 ? allowed.FindAll(id => Vocabulary.PlainChars[id] < 0) : allowed;
        if (finish && preferred.Exists(Vocabulary.IsEndToken))
        {
            return preferred.Find(Vocabulary.IsEndToken);
        }

        List<int> from = preferred.Count > 0 ? preferred : allowed;
        return from[random.Next(from.Count)];
    }
}
