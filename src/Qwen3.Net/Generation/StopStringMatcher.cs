namespace Qwen3.Net.Generation;

/// <summary>
/// Finds stop strings in streamed text, holding back the tail that could still become one, so no part of a stop string
/// is ever released (llama-server's streaming does the same).
/// </summary>
internal sealed class StopStringMatcher(IReadOnlyList<string> stopStrings)
{
    private string _held = string.Empty;

    /// <summary>
    /// Adds text. Returns true when a stop string is complete: <paramref name="released"/> is the text before it, and
    /// nothing after it is wanted. Otherwise <paramref name="released"/> is the text that can no longer be part of one.
    /// </summary>
    public bool Push(string text, out string released)
    {
        // A token whose character is not complete yet brings no text, and what is held may still become a stop string.
        if (stopStrings.Count == 0 || text.Length == 0)
        {
            released = text;
            return false;
        }

        string pending = _held + text;
        int stopAt = -1;
        foreach (string stop in stopStrings)
        {
            int at = pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (stopAt < 0 || at < stopAt))
            {
                stopAt = at;
            }
        }

        if (stopAt >= 0)
        {
            released = pending[..stopAt];
            _held = string.Empty;
            return true;
        }

        int hold = 0;
        foreach (string stop in stopStrings)
        {
            hold = Math.Max(hold, PartialSuffix(pending, stop));
        }

        released = pending[..^hold];
        _held = pending[^hold..];
        return false;
    }

    /// <summary>
    /// Adds the text of one generated token: as <see cref="Push"/>, except that a special token's text (if any) is never
    /// searched, and no stop string spans one, so what was held is released before it.
    /// </summary>
    public bool PushToken(bool special, string text, out string released)
    {
        if (special)
        {
            released = Flush() + text;
            return false;
        }

        return Push(text, out released);
    }

    /// <summary>Releases the held tail: the stream ended, or a boundary (a special token) came that no stop string spans.</summary>
    public string Flush()
    {
        string held = _held;
        _held = string.Empty;
        return held;
    }

    /// <summary>Length of the longest proper prefix of <paramref name="stop"/> that <paramref name="text"/> ends with.</summary>
    internal static int PartialSuffix(string text, string stop)
    {
        for (int length = Math.Min(stop.Length - 1, text.Length); length > 0; length--)
        {
            if (text.AsSpan(text.Length - length).SequenceEqual(stop.AsSpan(0, length)))
            {
                return length;
            }
        }

        return 0;
    }
}
