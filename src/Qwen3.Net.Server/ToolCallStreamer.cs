using System.Text;
using System.Text.Json;

namespace Qwen3.Net.Server;

/// <summary>
/// Follows the text of one <c>&lt;tool_call&gt;</c> block while the model writes it, and finds in it the call's name and
/// the raw text of its <c>arguments</c> object, so both can be streamed before the block is complete.
/// </summary>
/// <remarks>
/// It tracks only the JSON structure (strings, escapes and nesting), not validity: whether the block is a call is
/// decided by the chat output parser when it closes. The arguments text it exposes is the exact span of the
/// <c>arguments</c> object's value, which is what the parsed call's raw arguments are when the block turns out valid.
/// An <c>arguments</c> value that is not an object (a JSON string holding the arguments) is not exposed: its final
/// text is the string's decoded value, which a prefix of the raw text is not.
/// </remarks>
internal sealed class ToolCallStreamer
{
    private readonly StringBuilder _text = new();
    private int _scanned;
    private int _depth;
    private bool _inString;
    private bool _escaped;
    private bool _expectKey;
    private bool _expectValue;
    private int _keyStart = -1;
    private string? _key;
    private int _nameStart = -1;
    private int _argumentsStart = -1;
    private int _argumentsEnd = -1;

    /// <summary>The call's name, once its string is complete; null before, or when it is not a valid JSON string.</summary>
    public string? Name { get; private set; }

    /// <summary>The text of the <c>arguments</c> object so far; empty until it starts (or when it is not an object).</summary>
    public ReadOnlySpan<char> Arguments => _argumentsStart < 0 || _text[_argumentsStart] != '{'
        ? []
        : _text.ToString(_argumentsStart, (_argumentsEnd < 0 ? _scanned : _argumentsEnd) - _argumentsStart).AsSpan();

    /// <summary>Whether the call can be streamed now: its name is known and its arguments object has started.</summary>
    public bool Ready => Name is not null && _argumentsStart >= 0 && _text[_argumentsStart] == '{';

    /// <summary>Adds the next piece of the block's text.</summary>
    public void Append(string text)
    {
        _text.Append(text);
        for (; _scanned < _text.Length; _scanned++)
        {
            Scan(_text[_scanned], _scanned);
        }
    }

    private void Scan(char c, int at)
    {
        if (_inString)
        {
            if (_escaped)
            {
                _escaped = false;
            }
            else if (c == '\\')
            {
                _escaped = true;
            }
            else if (c == '"')
            {
                _inString = false;
                EndString(at);
            }

            return;
        }

        if (c is ' ' or '\t' or '\r' or '\n')
        {
            return;
        }

        if (_expectValue)
        {
            // The first character of a top-level value: remember where the name and the arguments start.
            _expectValue = false;
            if (_key == "name" && c == '"' && _nameStart < 0)
            {
                _nameStart = at;
            }
            else if (_key == "arguments" && _argumentsStart < 0)
            {
                _argumentsStart = at;
            }
        }

        switch (c)
        {
            case '"':
                _inString = true;
                if (_depth == 1 && _expectKey)
                {
                    _keyStart = at;
                }

                break;
            case '{' or '[':
                _depth++;
                _expectKey = _depth == 1 && c == '{';
                break;
            case '}' or ']':
                _depth--;
                if (_depth == 1 && _argumentsStart >= 0 && _argumentsEnd < 0)
                {
                    _argumentsEnd = at + 1;
                }

                break;
            case ':' when _depth == 1 && _key is not null:
                _expectValue = true;
                break;
            case ',' when _depth == 1:
                _expectKey = true;
                _key = null;
                break;
        }
    }

    private void EndString(int at)
    {
        if (_depth != 1)
        {
            return;
        }

        if (_keyStart >= 0)
        {
            _key = Decode(_keyStart, at);
            _keyStart = -1;
            _expectKey = false;
        }
        else if (_nameStart >= 0 && Name is null && _key == "name")
        {
            Name = Decode(_nameStart, at);
        }
    }

    private string? Decode(int start, int end)
    {
        try
        {
            using var document = JsonDocument.Parse(_text.ToString(start, end + 1 - start));
            return document.RootElement.GetString();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            // Not a string the parser would take either (a bad escape, a lone surrogate): the name stays unknown.
            return null;
        }
    }
}
