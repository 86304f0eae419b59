namespace Vae.ML.Datasets;

/// <summary>Where the data sets are cached when the caller names no directory: one rule for every data set.</summary>
internal static class DatasetCache
{
    /// <summary>
    /// <c>$<paramref name="environmentVariable"/></c> when set, else <c>$XDG_CACHE_HOME/vae-ml/<paramref name="name"/></c>,
    /// else <c>~/.cache/vae-ml/<paramref name="name"/></c>; read anew on every call so tests and users can redirect it.
    /// </summary>
    /// <param name="environmentVariable">The variable that overrides the location for this data set.</param>
    /// <param name="name">The data set's folder name under the cache.</param>
    /// <returns>A full path.</returns>
    internal static string DefaultDirectory(string environmentVariable, string name)
    {
        string? configured = Environment.GetEnvironmentVariable(environmentVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }

        string? cacheHome = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrWhiteSpace(cacheHome))
        {
            cacheHome = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        }

        return Path.GetFullPath(Path.Combine(cacheHome, "vae-ml", name));
    }
}
