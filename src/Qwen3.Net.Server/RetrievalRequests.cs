using System.Text.Json;

namespace Qwen3.Net.Server;

/// <summary>What a retrieval request is checked against: the model's vocabulary, its context and its embedding size.</summary>
internal readonly record struct RetrievalModelLimits(int VocabularySize, int MaxTokens, int Dimensions)
{
    /// <summary>Throws a 400 naming <paramref name="param"/> when <paramref name="tokens"/> are more than <paramref name="limit"/>.</summary>
    public static void CheckLength(int tokens, int limit, string param)
    {
        if (tokens > limit)
        {
            throw OpenAIException.Invalid($"{param} has {tokens} tokens; the model takes at most {limit}.", param, "context_length_exceeded");
        }
    }
}

/// <summary>A checked <c>/v1/embeddings</c> body: the inputs as tokens, the dimensions kept and whether to answer in base64.</summary>
internal sealed record EmbeddingsRequest(List<int[]> Inputs, int Dimensions, bool Base64)
{
    /// <summary>Reads and checks the body's fields (all but <c>model</c>'s value, which the endpoint matches).</summary>
    /// <param name="root">The body, a JSON object.</param>
    /// <param name="options">The limits on inputs.</param>
    /// <param name="limits">The model's vocabulary, context and embedding size.</param>
    /// <param name="tokenize">Text to the tokens the model embeds.</param>
    /// <exception cref="OpenAIException">400 naming the field at fault.</exception>
    public static EmbeddingsRequest Parse(JsonElement root, Qwen3ServerOptions options, RetrievalModelLimits limits, Func<string, int[]> tokenize)
    {
        if (!ChatRequestParser.Optional(root, "model", out _))
        {
            throw ChatRequestParser.Missing("model");
        }

        var inputs = ParseInput(root, options, limits, tokenize);
        int dimensions = ChatRequestParser.Optional(root, "dimensions", out var d)
            ? (int)ChatRequestParser.ReadInteger(d, "dimensions", 1, limits.Dimensions)
            : limits.Dimensions;
        bool base64 = false;
        if (ChatRequestParser.Optional(root, "encoding_format", out var format))
        {
            base64 = ChatRequestParser.ReadString(format, "encoding_format") switch
            {
                "float" => false,
                "base64" => true,
                var other => throw OpenAIException.Invalid($"encoding_format must be 'float' or 'base64', not '{other}'.", "encoding_format"),
            };
        }

        return new EmbeddingsRequest(inputs, dimensions, base64);
    }

    /// <summary>
    /// <c>input</c> as token sequences: text is tokenized with <c>&lt;|endoftext|&gt;</c> appended (the model card's
    /// format); token lists are taken as they are.
    /// </summary>
    private static List<int[]> ParseInput(JsonElement root, Qwen3ServerOptions options, RetrievalModelLimits limits, Func<string, int[]> tokenize)
    {
        const string param = "input";
        if (!ChatRequestParser.Optional(root, param, out var input))
        {
            throw ChatRequestParser.Missing(param);
        }

        var inputs = new List<int[]>();
        if (input.ValueKind == JsonValueKind.String)
        {
            inputs.Add(Text(input, param, limits, tokenize));
        }
        else if (input.ValueKind == JsonValueKind.Array && input.GetArrayLength() > 0 && input[0].ValueKind == JsonValueKind.Number)
        {
            inputs.Add(Tokens(input, param, limits));
        }
        else if (input.ValueKind == JsonValueKind.Array)
        {
            int count = input.GetArrayLength();
            if (count == 0)
            {
                throw OpenAIException.Invalid("input must not be an empty list.", param);
            }

            if (count > options.MaxEmbeddingInputs)
            {
                throw OpenAIException.Invalid($"input has {count} items; at most {options.MaxEmbeddingInputs} are taken per request.", param);
            }

            int i = 0;
            foreach (var item in input.EnumerateArray())
            {
                string itemParam = $"input[{i++}]";
                inputs.Add(item.ValueKind == JsonValueKind.Array ? Tokens(item, itemParam, limits) : Text(item, itemParam, limits, tokenize));
            }
        }
        else
        {
            throw ChatRequestParser.WrongType(param, "a string, a list of strings, a list of token ids or a list of token id lists");
        }

        return inputs;
    }

    private static int[] Text(JsonElement json, string param, RetrievalModelLimits limits, Func<string, int[]> tokenize)
    {
        string text = ChatRequestParser.ReadString(json, param);
        if (text.Length == 0)
        {
            throw OpenAIException.Invalid($"{param} is an empty string.", param);
        }

        int[] tokens = tokenize(text);
        RetrievalModelLimits.CheckLength(tokens.Length, limits.MaxTokens, param);
        return tokens;
    }

    private static int[] Tokens(JsonElement json, string param, RetrievalModelLimits limits)
    {
        int count = json.GetArrayLength();
        if (count == 0)
        {
            throw OpenAIException.Invalid($"{param} is an empty token list.", param);
        }

        RetrievalModelLimits.CheckLength(count, limits.MaxTokens, param);
        var tokens = new int[count];
        int i = 0;
        foreach (var id in json.EnumerateArray())
        {
            tokens[i++] = (int)ChatRequestParser.ReadInteger(id, param, 0, limits.VocabularySize - 1);
        }

        return tokens;
    }
}

/// <summary>A checked <c>/v1/rerank</c> body: the documents, each one's prompt tokens, how many results to answer and whether with their text.</summary>
internal sealed record RerankRequest(string[] Documents, int[][] Prompts, int TopN, bool ReturnDocuments)
{
    /// <summary>Reads and checks the body's fields (all but <c>model</c>, which the endpoint matches).</summary>
    /// <param name="root">The body, a JSON object.</param>
    /// <param name="options">The limit on documents.</param>
    /// <param name="maxTokens">The most tokens one prompt may have.</param>
    /// <param name="encodePair">A (query, document, instruction) to its prompt tokens.</param>
    /// <exception cref="OpenAIException">400 naming the field at fault.</exception>
    public static RerankRequest Parse(JsonElement root, Qwen3ServerOptions options, int maxTokens, Func<string, string, string?, int[]> encodePair)
    {
        string query = ChatRequestParser.Optional(root, "query", out var q) ? ChatRequestParser.ReadString(q, "query") : throw ChatRequestParser.Missing("query");
        string? instruction = ChatRequestParser.Optional(root, "instruction", out var ins) ? ChatRequestParser.ReadString(ins, "instruction") : null;
        bool returnDocuments = ChatRequestParser.Optional(root, "return_documents", out var rd) && ChatRequestParser.ReadBool(rd, "return_documents");
        if (!ChatRequestParser.Optional(root, "documents", out var docs))
        {
            throw ChatRequestParser.Missing("documents");
        }

        if (docs.ValueKind != JsonValueKind.Array)
        {
            throw ChatRequestParser.WrongType("documents", "a list of strings");
        }

        int count = docs.GetArrayLength();
        if (count == 0)
        {
            throw OpenAIException.Invalid("documents must not be an empty list.", "documents");
        }

        if (count > options.MaxRerankDocuments)
        {
            throw OpenAIException.Invalid($"documents has {count} items; at most {options.MaxRerankDocuments} are taken per request.", "documents");
        }

        // top_n above the number of documents returns them all, as llama-server and vLLM do.
        int topN = ChatRequestParser.Optional(root, "top_n", out var n) ? (int)Math.Min(ChatRequestParser.ReadInteger(n, "top_n", 1, int.MaxValue), count) : count;

        var documents = new string[count];
        var prompts = new int[count][];
        int i = 0;
        foreach (var doc in docs.EnumerateArray())
        {
            string param = $"documents[{i}]";

            // Cohere's shape, {"text": ...}, as well as a plain string.
            documents[i] = doc.ValueKind == JsonValueKind.Object
                ? (ChatRequestParser.Optional(doc, "text", out var text) ? ChatRequestParser.ReadString(text, param + ".text") : throw ChatRequestParser.Missing(param + ".text"))
                : ChatRequestParser.ReadString(doc, param);
            prompts[i] = encodePair(query, documents[i], instruction);
            RetrievalModelLimits.CheckLength(prompts[i].Length, maxTokens, param);
            i++;
        }

        return new RerankRequest(documents, prompts, topN, returnDocuments);
    }
}
