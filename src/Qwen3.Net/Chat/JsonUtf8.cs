using System.Text.Json;

namespace Qwen3.Net.Chat;

/// <summary>Checks JSON handed to the chat API before it is kept: a JsonDocument checks UTF-8 only when text is read.</summary>
internal static class JsonUtf8
{
    /// <summary>Throws <see cref="ArgumentException"/> when a string or property name in <paramref name="json"/> is not valid UTF-8.</summary>
    public static void ThrowIfInvalid(JsonElement json, string paramName)
    {
        // An explicit stack: the document's own depth limit is the caller's choice, and recursion on input must be bounded.
        var pending = new Stack<JsonElement>();
        pending.Push(json);
        try
        {
            while (pending.TryPop(out JsonElement element))
            {
                switch (element.ValueKind)
                {
                    case JsonValueKind.Object:
                        foreach (JsonProperty property in element.EnumerateObject())
                        {
                            _ = property.Name;
                            pending.Push(property.Value);
                        }

                        break;
                    case JsonValueKind.Array:
                        foreach (JsonElement item in element.EnumerateArray())
                        {
                            pending.Push(item);
                        }

                        break;
                    case JsonValueKind.String:
                        _ = element.GetString();
                        break;
                }
            }
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException($"The JSON contains text that is not valid UTF-8: {e.Message}", paramName, e);
        }
    }
}
