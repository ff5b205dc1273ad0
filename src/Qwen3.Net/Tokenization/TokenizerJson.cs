using System.Text.Json;

namespace Qwen3.Net;

/// <summary>
/// The parts of a Hugging Face <c>tokenizer.json</c> that <see cref="Qwen3Tokenizer"/> reads, taken in one forward pass.
/// </summary>
/// <remarks>
/// The vocabulary and merges (over 95% of an 11 MB file) are read token by token straight into the lists that
/// BpeTokenizer takes, instead of through a DOM that would hold a second copy of every entry; the lists can be enumerated
/// on another thread while they are being read (see <see cref="StreamedList{T}"/>). The small sections stay
/// <see cref="JsonElement"/>s so they are checked as before. Content problems are recorded, not thrown, so that the
/// tokenizer reports syntax errors anywhere in the file first and then the problems in its usual order.
/// </remarks>
internal sealed class TokenizerJson
{
    /// <summary>The kind of the top-level value.</summary>
    public JsonValueKind RootKind { get; private set; }

    /// <summary>The <c>normalizer</c> section; Undefined when missing.</summary>
    public JsonElement Normalizer { get; private set; }

    /// <summary>The <c>pre_tokenizer</c> section; Undefined when missing.</summary>
    public JsonElement PreTokenizer { get; private set; }

    /// <summary>The <c>decoder</c> section; Undefined when missing.</summary>
    public JsonElement Decoder { get; private set; }

    /// <summary>The <c>added_tokens</c> section; Undefined when missing.</summary>
    public JsonElement AddedTokens { get; private set; }

    /// <summary>The kind of <c>model</c>; Undefined when missing.</summary>
    public JsonValueKind ModelKind { get; private set; }

    /// <summary><c>model.type</c>; Undefined when missing.</summary>
    public JsonElement ModelType { get; private set; }

    /// <summary>The kind of <c>model.vocab</c>; Undefined when missing.</summary>
    public JsonValueKind VocabKind { get; private set; }

    /// <summary>The kind of <c>model.merges</c>; Undefined when missing.</summary>
    public JsonValueKind MergesKind { get; private set; }

    /// <summary>The entries of <c>model.vocab</c> in file order, duplicates included; complete once <see cref="Read"/> returns.</summary>
    public StreamedList<KeyValuePair<string, int>> Vocab { get; } = new();

    /// <summary>The first entry of <c>model.vocab</c> whose id is not an integer, described; null when there is none.</summary>
    public string? VocabProblem { get; private set; }

    /// <summary>The merges as <c>"left right"</c> lines, the form BpeOptions takes; complete once <see cref="Read"/> returns.</summary>
    public StreamedList<string> Merges { get; } = new();

    /// <summary>The first entry of <c>model.merges</c> that is neither a pair of strings nor a string, described; null when there is none.</summary>
    public string? MergesProblem { get; private set; }

    /// <summary>
    /// Reads a whole <c>tokenizer.json</c> into this object, once. Completes <see cref="Vocab"/> and <see cref="Merges"/>
    /// when it returns and abandons them when it throws.
    /// </summary>
    /// <exception cref="JsonException">The bytes are not valid JSON.</exception>
    public void Read(ReadOnlySpan<byte> json)
    {
        try
        {
            ReadDocument(json);
        }
        catch
        {
            Vocab.Abandon();
            Merges.Abandon();
            throw;
        }

        Vocab.Complete();
        Merges.Complete();
    }

    private void ReadDocument(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        reader.Read();
        RootKind = KindOf(reader.TokenType);
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
        }
        else
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    ReadModel(ref reader);
                }
                else if (reader.ValueTextEquals("added_tokens"u8))
                {
                    reader.Read();
                    AddedTokens = JsonElement.ParseValue(ref reader);
                }
                else if (reader.ValueTextEquals("normalizer"u8))
                {
                    reader.Read();
                    Normalizer = JsonElement.ParseValue(ref reader);
                }
                else if (reader.ValueTextEquals("pre_tokenizer"u8))
                {
                    reader.Read();
                    PreTokenizer = JsonElement.ParseValue(ref reader);
                }
                else if (reader.ValueTextEquals("decoder"u8))
                {
                    reader.Read();
                    Decoder = JsonElement.ParseValue(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
        }

        // Anything but whitespace after the top-level value makes the reader throw, as JsonDocument.Parse did.
        reader.Read();
    }

    private static JsonValueKind KindOf(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => JsonValueKind.Object,
        JsonTokenType.StartArray => JsonValueKind.Array,
        JsonTokenType.String => JsonValueKind.String,
        JsonTokenType.Number => JsonValueKind.Number,
        JsonTokenType.True => JsonValueKind.True,
        JsonTokenType.False => JsonValueKind.False,
        JsonTokenType.Null => JsonValueKind.Null,
        _ => JsonValueKind.Undefined,
    };

    private void ReadModel(ref Utf8JsonReader reader)
    {
        ModelKind = KindOf(reader.TokenType);
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                ModelType = JsonElement.ParseValue(ref reader);
            }
            else if (reader.ValueTextEquals("vocab"u8))
            {
                // The entries may already be in use on another thread, so a second "vocab" cannot replace the first
                // (as a JSON DOM would have it): a file that says two things is malformed.
                reader.Read();
                if (VocabKind != JsonValueKind.Undefined)
                {
                    VocabProblem ??= "model.vocab appears more than once";
                    reader.Skip();
                    continue;
                }

                VocabKind = KindOf(reader.TokenType);
                ReadVocab(ref reader);
            }
            else if (reader.ValueTextEquals("merges"u8))
            {
                reader.Read();
                if (MergesKind != JsonValueKind.Undefined)
                {
                    MergesProblem ??= "model.merges appears more than once";
                    reader.Skip();
                    continue;
                }

                MergesKind = KindOf(reader.TokenType);
                ReadMerges(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private void ReadVocab(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string token = reader.GetString()!;
            reader.Read();
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int id))
            {
                Vocab.Add(new KeyValuePair<string, int>(token, id));
            }
            else
            {
                VocabProblem ??= $"model.vocab gives '{token}' a {KindOf(reader.TokenType)} rather than a 32-bit integer id";
                reader.Skip();
            }
        }
    }

    private void ReadMerges(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return;
        }

        char[] buffer = new char[256];
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            Utf8JsonReader entryStart = reader;
            string? line = reader.TokenType == JsonTokenType.StartArray ? TryReadPair(ref reader, ref buffer) : null;
            if (line is null)
            {
                // Off the common ["left", "right"] path: look at the whole entry again from its start.
                reader = entryStart;
                line = ReadOtherMerge(JsonElement.ParseValue(ref reader));
            }

            if (line is not null)
            {
                Merges.Add(line);
            }
        }
    }

    /// <summary>Reads <c>["left", "right"]</c> into <c>"left right"</c>; null, with the reader anywhere inside the entry, for any other shape.</summary>
    private static string? TryReadPair(ref Utf8JsonReader reader, ref char[] buffer)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.String)
        {
            return null;
        }

        int length = CopyString(ref reader, ref buffer, 0);
        buffer[length++] = ' ';
        if (!reader.Read() || reader.TokenType != JsonTokenType.String)
        {
            return null;
        }

        length = CopyString(ref reader, ref buffer, length);
        return reader.Read() && reader.TokenType == JsonTokenType.EndArray ? new string(buffer, 0, length) : null;
    }

    private static int CopyString(ref Utf8JsonReader reader, ref char[] buffer, int start)
    {
        // UTF-8 and JSON escapes never take fewer bytes than the UTF-16 chars they decode to; +1 leaves room for the separator.
        int needed = start + reader.ValueSpan.Length + 1;
        if (needed > buffer.Length)
        {
            Array.Resize(ref buffer, Math.Max(needed, buffer.Length * 2));
        }

        return start + reader.CopyString(buffer.AsSpan(start));
    }

    private string? ReadOtherMerge(JsonElement entry)
    {
        // Older files store each merge as one "left right" string, which BpeOptions takes as is.
        if (entry.ValueKind == JsonValueKind.String)
        {
            return entry.GetString();
        }

        MergesProblem ??= entry.ValueKind == JsonValueKind.Array && entry.GetArrayLength() != 2
            ? $"model.merges holds {entry}, not a pair"
            : $"model.merges holds {entry}, not a pair of strings or a string";
        return null;
    }
}
