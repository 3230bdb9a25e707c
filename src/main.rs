use clap::Parser;

fn main() {
    let cli = learntrac::cli::Cli::parse();
    std::process::exit(learntrac::run(cli));
}
