using System.Text.RegularExpressions;

namespace Qwen3.Net.Hub;

/// <summary>
/// A model id: <c>org/name</c>, then optionally <c>@revision</c> (branch, tag or commit), then optionally
/// <c>:file.gguf</c> or <c>:QUANT</c> (such as <c>:Q4_K_M</c>) to pick one GGUF file.
/// </summary>
internal sealed partial record HubModelId(string Repository, string Revision, string? FileSelector)
{
    /// <summary>The id as the user wrote it.</summary>
    public required string Text { get; init; }

    /// <summary>True when no revision was given, so <c>main</c> is meant.</summary>
    public bool IsDefaultRevision => Revision == "main";

    /// <summary>Reads a model id; false when the text is not one (a local path, for instance).</summary>
    public static bool TryParse(string text, out HubModelId id)
    {
        id = null!;
        if (string.IsNullOrEmpty(text) || text.Length > 512)
        {
            return false;
        }

        string rest = text;
        string? selector = null;
        int colon = rest.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            selector = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!IsSafeRelativePath(selector))
            {
                return false;
            }
        }

        string revision = "main";
        int at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            revision = rest[(at + 1)..];
            rest = rest[..at];
            if (!RevisionPattern().IsMatch(revision) || !IsSafeRelativePath(revision))
            {
                return false;
            }
        }

        if (!RepositoryPattern().IsMatch(rest) || rest.Contains("--", StringComparison.Ordinal) || rest.Contains("..", StringComparison.Ordinal))
        {
            return false;
        }

        id = new HubModelId(rest, revision, selector) { Text = text };
        return true;
    }

    /// <summary>Reads a model id.</summary>
    /// <exception cref="ArgumentException">The text is not a model id.</exception>
    public static HubModelId Parse(string text) =>
        TryParse(text, out var id)
            ? id
            : throw new ArgumentException($"'{text}' is not a Hugging Face model id: expected org/name, optionally @revision and :file.gguf or :QUANT (for example Qwen/Qwen3-1.7B or Qwen/Qwen3-1.7B-GGUF:Q8_0).", nameof(text));

    /// <summary>
    /// True for a relative path made of plain segments: the hub's file names and revisions become paths in the cache,
    /// so none may climb out of it or be absolute.
    /// </summary>
    public static bool IsSafeRelativePath(string path) =>
        path.Length is > 0 and <= 1024
        && !path.StartsWith('/')
        && !path.Contains('\\', StringComparison.Ordinal)
        && !path.Contains(':', StringComparison.Ordinal)
        && !path.Any(char.IsControl)
        && path.Split('/').All(segment => segment.Length > 0 && segment != "." && segment != "..");

    /// <summary>True for a full 40-digit lowercase commit hash.</summary>
    public static bool IsCommitHash(string text) => CommitPattern().IsMatch(text);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex("^[A-Za-z0-9._/-]{1,255}$")]
    private static partial Regex RevisionPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();
}
