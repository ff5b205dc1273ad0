namespace Qwen3.Net.Chat;

/// <summary>
/// Thrown when a chat template cannot be parsed, fails while rendering (for example it uses an undefined value in a
/// way Jinja forbids), or calls <c>raise_exception(message)</c>.
/// </summary>
/// <remarks>
/// For <c>raise_exception</c> the <see cref="Exception.Message"/> is exactly the template's message, so callers can show
/// it to users as the template's authors intended.
/// </remarks>
public sealed class ChatTemplateException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="line">1-based template line, when known.</param>
    /// <param name="column">1-based template column, when known.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public ChatTemplateException(string message, int? line = null, int? column = null, Exception? inner = null)
        : base(message, inner)
    {
        Line = line;
        Column = column;
    }

    /// <summary>1-based line in the template source where the problem is, or <see langword="null"/> when unknown.</summary>
    public int? Line { get; }

    /// <summary>1-based column in the template source where the problem is, or <see langword="null"/> when unknown.</summary>
    public int? Column { get; }

    /// <summary><see langword="true"/> when the template itself called <c>raise_exception</c>.</summary>
    public bool RaisedByTemplate { get; init; }
}
