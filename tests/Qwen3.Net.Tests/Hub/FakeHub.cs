using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Qwen3.Net.Tests.Hub;

/// <summary>
/// A loopback Hugging Face hub speaking the part of the protocol huggingface_hub uses:
/// <c>GET /api/models/{repo}/revision/{rev}</c> (sha and siblings), <c>HEAD|GET /{repo}/resolve/{rev}/{file}</c> with
/// <c>X-Repo-Commit</c>, <c>ETag</c> (git SHA-1 of small files) and, for LFS files, a 302 to <c>/cdn/{sha256}</c>
/// carrying <c>X-Linked-Etag</c> and <c>X-Linked-Size</c>; the CDN serves byte ranges. Errors carry
/// <c>X-Error-Code</c> (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) as the real hub does.
/// Every request is logged so tests can assert what was (not) fetched.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    /// <summary>Files at least this large are stored "in LFS" (served by redirect, SHA-256 ETag), as the hub does for weights.</summary>
    private const int LfsThreshold = 10_000;

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FakeRepository> _repositories = new();
    private readonly ConcurrentDictionary<string, (string Repository, string File)> _lfs = new();
    private readonly ConcurrentDictionary<string, long> _cutAfter = new();
    private readonly ConcurrentDictionary<string, int> _corrupt = new();
    private readonly ConcurrentQueue<HubRequest> _requests = new();

    private FakeHub(WebApplication app) => _app = app;

    public Uri BaseUri { get; private set; } = null!;

    public string Endpoint => BaseUri.ToString().TrimEnd('/');

    public IReadOnlyList<HubRequest> Requests => _requests.ToArray();

    /// <summary>When set, each response with a .safetensors file waits for this before sending its body (to hold downloads in flight together).</summary>
    public TaskCompletionSource? Gate { get; set; }

    public static async Task<FakeHub> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var hub = new FakeHub(app);
        app.Run(hub.HandleAsync);
        await app.StartAsync();
        hub.BaseUri = new Uri(app.Urls.Single());
        return hub;
    }

    /// <summary>Serves the files of a local folder (recursively) as a repository at one commit.</summary>
    public FakeRepository AddFolder(string repository, string folder, string? commit = null) =>
        Add(repository, Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f).Replace('\\', '/'), File.ReadAllBytes), commit);

    public FakeRepository Add(string repository, IReadOnlyDictionary<string, byte[]> files, string? commit = null)
    {
        var repo = new FakeRepository(repository, commit ?? Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repository + Guid.NewGuid()))), files);
        _repositories[repository] = repo;
        foreach (var (name, bytes) in files)
        {
            if (bytes.Length >= LfsThreshold)
            {
                _lfs[FakeRepository.Sha256(bytes)] = (repository, name);
            }
        }

        return repo;
    }

    /// <summary>The next CDN download of the file sends this many bytes, then drops the connection.</summary>
    public void CutOnce(string file, long afterBytes) => _cutAfter[file] = afterBytes;

    /// <summary>The file's bytes are served with one byte flipped at this offset (its ETag stays the true hash).</summary>
    public void Corrupt(string file, int offset) => _corrupt[file] = offset;

    public async ValueTask DisposeAsync()
    {
        Gate?.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var log = new HubRequest(request.Method, request.Path.Value!, request.Headers.Range.ToString(), request.Headers.Authorization.ToString());
        _requests.Enqueue(log);
        string path = Uri.UnescapeDataString(request.Path.Value!.TrimStart('/'));
        string[] parts = path.Split('/');
        if (parts is ["cdn", var blob] && _lfs.TryGetValue(blob, out var lfs))
        {
            await ServeBytesAsync(context, lfs.File, _repositories[lfs.Repository].Files[lfs.File], log);
            return;
        }

        bool api = parts is ["api", "models", _, _, "revision", ..];
        string repository = api ? $"{parts[2]}/{parts[3]}" : parts.Length >= 2 ? $"{parts[0]}/{parts[1]}" : "";
        if (!_repositories.TryGetValue(repository, out var repo))
        {
            Error(context, 404, "RepoNotFound", "Repository not found");
            return;
        }

        string token = request.Headers.Authorization.ToString() is { Length: > 7 } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : "";
        if (repo.Gated && token != repo.AcceptedToken)
        {
            Error(context, token.Length == 0 ? 401 : 403, "GatedRepo", "Access to this model is restricted. You must have access to it and be authenticated to access it.");
            return;
        }

        if (api)
        {
            string revision = string.Join('/', parts[5..]);
            if (revision != "main" && revision != repo.Commit)
            {
                Error(context, 404, "RevisionNotFound", "Invalid rev id: " + revision);
                return;
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                id = repo.Name,
                sha = repo.Commit,
                siblings = repo.Files.Keys.Select(f => new { rfilename = f }),
            }));
            return;
        }

        if (parts.Length < 5 || parts[2] != "resolve")
        {
            Error(context, 404, null, "Not found");
            return;
        }

        if (parts[3] != "main" && parts[3] != repo.Commit)
        {
            Error(context, 404, "RevisionNotFound", "Invalid rev id: " + parts[3]);
            return;
        }

        string file = string.Join('/', parts[4..]);
        if (!repo.Files.TryGetValue(file, out byte[]? bytes))
        {
            Error(context, 404, "EntryNotFound", file + " does not exist on " + parts[3]);
            return;
        }

        var response = context.Response;
        response.Headers["X-Repo-Commit"] = repo.Commit;
        if (bytes.Length >= LfsThreshold)
        {
            string sha = FakeRepository.Sha256(bytes);
            response.StatusCode = 302;
            response.Headers.Location = $"{Endpoint}/cdn/{sha}";
            response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            response.Headers["X-Linked-Size"] = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            response.Headers.ETag = $"\"{FakeRepository.GitSha1(bytes)}\"";
            return;
        }

        response.Headers.ETag = $"\"{FakeRepository.GitSha1(bytes)}\"";
        await ServeBytesAsync(context, file, bytes, log);
    }

    private async Task ServeBytesAsync(HttpContext context, string file, byte[] bytes, HubRequest log)
    {
        var response = context.Response;
        long start = 0;
        string range = context.Request.Headers.Range.ToString();
        if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range[6..^1], System.Globalization.CultureInfo.InvariantCulture);
            if (start >= bytes.Length)
            {
                response.StatusCode = 416;
                return;
            }

            response.StatusCode = 206;
            response.Headers.ContentRange = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
        }

        response.ContentLength = bytes.Length - start;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        byte[] body = bytes;
        if (_corrupt.TryGetValue(file, out int offset))
        {
            body = (byte[])bytes.Clone();
            body[offset] ^= 0x5a;
        }

        if (Gate is { } gate && file.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            await gate.Task;
        }

        long end = bytes.Length;
        bool cut = _cutAfter.TryRemove(file, out long cutAfter);
        if (cut)
        {
            end = Math.Min(end, start + cutAfter);
        }

        // Recorded before the write: the client can finish reading, and a test look, before this continuation runs.
        log.BytesSent = end - start;
        await response.Body.WriteAsync(body.AsMemory((int)start, (int)(end - start)));
        await response.Body.FlushAsync();
        if (cut)
        {
            context.Abort();
        }
    }

    private static void Error(HttpContext context, int status, string? code, string message)
    {
        context.Response.StatusCode = status;
        if (code is not null)
        {
            context.Response.Headers["X-Error-Code"] = code;
        }

        context.Response.Headers["X-Error-Message"] = message;
    }
}

/// <summary>One request the fake hub received.</summary>
internal sealed record HubRequest(string Method, string Path, string Range, string Authorization)
{
    public long BytesSent { get; set; }
}

/// <summary>A repository of the fake hub.</summary>
internal sealed class FakeRepository(string name, string commit, IReadOnlyDictionary<string, byte[]> files)
{
    public string Name => name;

    public string Commit => commit;

    public IReadOnlyDictionary<string, byte[]> Files => files;

    /// <summary>Refuses requests without this token (401) or with another one (403), as a gated repository does.</summary>
    public bool Gated { get; set; }

    public string? AcceptedToken { get; set; }

    /// <summary>The ETag the hub gives a file: the SHA-256 for LFS files, the git blob SHA-1 for the others.</summary>
    public string ETag(string file) => files[file].Length >= 10_000 ? Sha256(files[file]) : GitSha1(files[file]);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static string GitSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));
}
