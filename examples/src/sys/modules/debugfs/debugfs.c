/* The debugfs kernel module (sample): a shared object the kernel would load. */
const char debugfs_module_name[] = "debugfs";
int debugfs_module_version = 1;
