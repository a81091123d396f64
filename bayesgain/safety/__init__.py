"""Guards every command shares: path containment, the output-folder lock, interrupt handling."""

from .containment import OutsideFolderError, cell_excerpt, contained_path, damage_reason, duplicate_files
from .interrupt import EXIT_INTERRUPTED, Interrupted, interruptible, is_interrupt, raise_if_interrupted
from .outfolder import (OutputFolder, OutputFolderError, output_file_problem, output_problem, remove_simulated,
                        stale_temporaries)

__all__ = ["OutsideFolderError", "cell_excerpt", "damage_reason", "contained_path", "duplicate_files", "EXIT_INTERRUPTED",
           "Interrupted", "is_interrupt", "raise_if_interrupted", "interruptible", "OutputFolder", "OutputFolderError",
           "output_file_problem", "output_problem", "remove_simulated", "stale_temporaries"]
