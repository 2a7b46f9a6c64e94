/* The tmpfs kernel module (sample): a shared object the kernel would load. */
const char tmpfs_module_name[] = "tmpfs";
int tmpfs_module_version = 1;
