namespace Vae.ML.Samples; static class Program { static int Main() => 0; }
