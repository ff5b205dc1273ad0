using System.Text;

namespace Qwen3.Net;

/// <summary>
/// Turns token ids into text as they are generated, emitting only complete characters. One character (an emoji, a CJK
/// ideograph) can be spread over several byte-level tokens; its leading bytes are held back until it is complete, so no
/// U+FFFD is ever produced for a character that is merely unfinished.
/// </summary>
/// <remarks>
/// The concatenation of everything returned by <see cref="Append(int)"/> and <see cref="Flush"/> equals
/// <see cref="Qwen3Tokenizer.Decode(ReadOnlySpan{int}, bool)"/> of the same ids. Not thread-safe: use one per generation.
/// </remarks>
public sealed class StreamingDetokenizer
{
    // A held-back tail is at most 3 bytes, but one token can be long (e.g. a run of spaces).
    private const int InitialCapacity = 64;

    private readonly Qwen3Tokenizer _tokenizer;
    private byte[] _pending = new byte[InitialCapacity];
    private int _pendingCount;

    /// <summary>Creates a decoder with empty state.</summary>
    /// <param name="tokenizer">The tokenizer whose vocabulary the ids come from.</param>
    /// <param name="skipSpecialTokens">Drop the tokens marked special, as <see cref="Qwen3Tokenizer.Decode(ReadOnlySpan{int}, bool)"/> does.</param>
    public StreamingDetokenizer(Qwen3Tokenizer tokenizer, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        SkipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Whether special tokens (such as <c>&lt;|im_end|&gt;</c>) are dropped from the text.</summary>
    public bool SkipSpecialTokens { get; }

    /// <summary>Adds one token and returns the text it completes, which may be empty.</summary>
    /// <param name="tokenId">The next token id.</param>
    /// <returns>The newly completed text; empty when the token only starts or continues a character.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokenId"/> is negative or not below <see cref="Qwen3Tokenizer.VocabularySize"/>.</exception>
    public string Append(int tokenId)
    {
        if ((uint)tokenId >= (uint)_tokenizer.VocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(tokenId), tokenId, $"Token id {tokenId} is outside 0..{_tokenizer.VocabularySize - 1}.");
        }

        if (SkipSpecialTokens && _tokenizer.IsSpecialToken(tokenId))
        {
            return string.Empty;
        }

        ReadOnlySpan<byte> bytes = _tokenizer.TokenBytes(tokenId);
        if (_pendingCount + bytes.Length > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingCount + bytes.Length));
        }

        bytes.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += bytes.Length;

        int ready = _pendingCount - UnfinishedTailLength(_pending.AsSpan(0, _pendingCount));
        if (ready == 0)
        {
            return string.Empty;
        }

        // Decoding up to the unfinished tail and the tail later gives the same text as decoding everything at once:
        // the tail starts with a lead byte, where lossy UTF-8 decoding always starts afresh.
        string text = Encoding.UTF8.GetString(_pending, 0, ready);
        _pending.AsSpan(ready, _pendingCount - ready).CopyTo(_pending);
        _pendingCount -= ready;
        return text;
    }

    /// <summary>Ends the stream: returns U+FFFD for any bytes that never became a complete character, and clears the state.</summary>
    /// <returns>The remaining text; empty when nothing was held back.</returns>
    public string Flush()
    {
        string text = _pendingCount == 0 ? string.Empty : Encoding.UTF8.GetString(_pending, 0, _pendingCount);
        _pendingCount = 0;
        return text;
    }

    /// <summary>Forgets any held-back bytes, so the decoder can start a new stream.</summary>
    public void Reset() => _pendingCount = 0;

    /// <summary>
    /// Length of the trailing bytes that form a valid but incomplete UTF-8 sequence, which later bytes may still finish.
    /// A tail that can never become valid (a stray continuation byte, an overlong or surrogate lead) is not held back.
    /// </summary>
    internal static int UnfinishedTailLength(ReadOnlySpan<byte> bytes)
    {
        for (int length = 1; length <= 3 && length <= bytes.Length; length++)
        {
            byte lead = bytes[^length];
            if (lead is >= 0x80 and <= 0xBF)
            {
                continue;
            }

            int needed = lead switch
            {
                >= 0xC2 and <= 0xDF => 2,
                >= 0xE0 and <= 0xEF => 3,
                >= 0xF0 and <= 0xF4 => 4,
                _ => 0,
            };

            if (needed <= length)
            {
                return 0;
            }

            if (length >= 2)
            {
                // The second byte's range is narrower for some leads, which is how overlong forms, surrogates and
                // code points above U+10FFFF are excluded.
                byte second = bytes[^(length - 1)];
                bool secondValid = lead switch
                {
                    0xE0 => second is >= 0xA0 and <= 0xBF,
                    0xED => second is >= 0x80 and <= 0x9F,
                    0xF0 => second is >= 0x90 and <= 0xBF,
                    0xF4 => second is >= 0x80 and <= 0x8F,
                    _ => true,
                };

                if (!secondValid)
                {
                    return 0;
                }
            }

            return length;
        }

        return 0;
    }
}
