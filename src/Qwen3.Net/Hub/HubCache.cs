namespace Qwen3.Net.Hub;

/// <summary>
/// One repository's folder in the <c>huggingface_hub</c> cache, laid out as Python lays it out:
/// <c>models--{org}--{name}/refs/{revision}</c> holds a commit hash, <c>snapshots/{commit}/{file}</c> is a relative
/// symbolic link to <c>blobs/{etag}</c> (a copy where links cannot be made), and downloads in progress are
/// <c>blobs/{etag}.incomplete</c>, locked through <c>.locks/models--{org}--{name}/{etag}.lock</c>.
/// </summary>
internal sealed class HubCache(string cacheDirectory, string repository)
{
    private readonly string _folderName = "models--" + repository.Replace("/", "--", StringComparison.Ordinal);

    public string RepositoryFolder => Path.Combine(cacheDirectory, _folderName);

    public string SnapshotFolder(string commit) => Path.Combine(RepositoryFolder, "snapshots", commit);

    public string BlobPath(string etag) => Path.Combine(RepositoryFolder, "blobs", etag);

    public string LockPath(string etag) => Path.Combine(cacheDirectory, ".locks", _folderName, etag + ".lock");

    /// <summary>The commit a revision points at in the cache: the ref file's content, or the revision itself when it is a cached commit.</summary>
    public string? CachedCommit(string revision)
    {
        string refPath = Path.Combine(RepositoryFolder, "refs", revision);
        if (File.Exists(refPath))
        {
            try
            {
                string commit = File.ReadAllText(refPath).Trim();
                return HubModelId.IsCommitHash(commit) ? commit : null;
            }
            catch (IOException)
            {
                return null;
            }
        }

        return HubModelId.IsCommitHash(revision) && Directory.Exists(SnapshotFolder(revision)) ? revision : null;
    }

    /// <summary>Records which commit a branch or tag points at (Python writes the hash without a newline).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit)
        {
            return;
        }

        string refPath = Path.Combine(RepositoryFolder, "refs", revision);
        Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        string temporary = refPath + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temporary, commit);
        File.Move(temporary, refPath, overwrite: true);
    }

    /// <summary>Makes <c>snapshots/{commit}/{file}</c> point at the blob: a relative link, or a copy where links fail.</summary>
    public void LinkSnapshotFile(string commit, string file, string etag)
    {
        string target = Path.Combine(SnapshotFolder(commit), file);
        if (File.Exists(target))
        {
            return;
        }

        string directory = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(directory);
        string blob = BlobPath(etag);
        try
        {
            File.CreateSymbolicLink(target, Path.GetRelativePath(directory, blob));
        }
        catch (IOException) when (File.Exists(target))
        {
            // Another process linked it first: same blob, same link.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // Windows without developer mode cannot make links; huggingface_hub copies then too.
            string temporary = target + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.Copy(blob, temporary);
            File.Move(temporary, target, overwrite: true);
        }
    }
}
