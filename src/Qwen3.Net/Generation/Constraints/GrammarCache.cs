using System.Runtime.CompilerServices;

namespace Qwen3.Net.Generation.Constraints;

/// <summary>
/// A tokenizer's vocabularies and its compiled grammars, keyed by <see cref="ResponseFormat"/>: a grammar's DFA and
/// token-mask caches then carry over from one request to the next with the same schema.
/// </summary>
internal sealed class GrammarCache
{
    /// <summary>Most compiled grammars kept per tokenizer (each holds its DFA states and cached masks).</summary>
    public const int Capacity = 32;

    private static readonly ConditionalWeakTable<Qwen3Tokenizer, GrammarCache> PerTokenizer = [];

    private readonly Lazy<TokenVocabulary> _vocabulary;
    private readonly Lazy<TokenVocabulary> _toolVocabulary;
    private readonly BoundedCache<string, CompiledGrammar> _grammars = new(Capacity);

    private GrammarCache(Qwen3Tokenizer tokenizer)
    {
        _vocabulary = new(() => TokenVocabulary.FromTokenizer(tokenizer));
        _toolVocabulary = new(() => TokenVocabulary.ForToolCalls(tokenizer));
    }

    public static GrammarCache For(Qwen3Tokenizer tokenizer) => PerTokenizer.GetValue(tokenizer, t => new GrammarCache(t));

    /// <summary>The grammar for <paramref name="format"/> against this tokenizer's vocabulary; null for free text.</summary>
    public CompiledGrammar? Get(ResponseFormat format)
    {
        if (format.Automaton is not { } automaton)
        {
            return null;
        }

        var vocabulary = format.Kind == ResponseFormatKind.ToolCalls ? _toolVocabulary : _vocabulary;
        return _grammars.GetOrAdd(format.Key, () => CompiledGrammar.FromAutomaton(automaton, vocabulary.Value));
    }
}
